using System.CommandLine;
using Rlhf.IO;

namespace Rlhf.Cli.Commands;

/// <summary>An output file exists and --force was not given; <paramref name="option"/> names the option that chose it.</summary>
public sealed class OutputExistsException(string path, string? option = null)
    : Exception($"{(option is null ? "" : option + ": ")}{path} exists; pass --force to overwrite it");

internal static class CommonOptions
{
    public static Option<FileInfo> Completions() => new("--completions")
    {
        Description = "completions.jsonl: {prompt_id, prompt, completions: [{id, text}]} per line",
        Required = true,
    };

    public static Option<FileInfo> Rankings() => new("--rankings")
    {
        Description = "rankings.jsonl written by `rlhf rankings` (or any file it accepts)",
        Required = true,
    };

    public static Option<FileInfo> Output(string description) => new("--out") { Description = description, Required = true };

    public static Option<bool> Force() => Flag("--force", "overwrite existing outputs");

    /// <summary>An on/off option; --help shows no default for flags by itself, so the description says it.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description + " [default: off]", DefaultValueFactory = _ => false };

    /// <summary>
    /// Throws when <paramref name="file"/> exists and overwriting was not asked for, or when it is a folder (FileInfo.Exists
    /// is false for one, so without this the write failed only after all the work, with or without --force).
    /// </summary>
    public static void CheckOverwrite(FileInfo file, bool force, string option = "--out")
    {
        if (Directory.Exists(file.FullName)) throw new InvalidInputException($"{option}: {file.FullName} is a folder; give a file name.");
        if (file.Exists && !force) throw new OutputExistsException(file.FullName, option);
    }
}
