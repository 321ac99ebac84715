using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlhf.Cli;

/// <summary>
/// What a command prints, the same way everywhere. Standard output carries only the result: one JSON object with
/// --json, else a human summary (nothing with --quiet). Progress and logs go to standard error (nothing with --quiet),
/// so a --json caller can read standard output without filtering. Errors are printed by <see cref="CliApp"/>.
/// </summary>
internal sealed class CliOutput
{
    /// <summary>--json on every command (recursive from the root).</summary>
    public static readonly Option<bool> JsonOption = new("--json")
    {
        Description = "print the result as one JSON object on standard output (progress and logs stay on standard error) [default: off]",
        Recursive = true,
        DefaultValueFactory = _ => false,
    };

    /// <summary>--quiet on every command (recursive from the root).</summary>
    public static readonly Option<bool> QuietOption = new("--quiet")
    {
        Description = "no progress, logs or summary; only errors (with --json the JSON result is still printed) [default: off]",
        Recursive = true,
        DefaultValueFactory = _ => false,
    };

    private static readonly JsonSerializerOptions Compact = new(Ppo.PpoRun.Json) { WriteIndented = false };

    private readonly TextWriter stdout;
    private readonly TextWriter stderr;

    private CliOutput(TextWriter stdout, TextWriter stderr, bool json, bool quiet)
    {
        this.stdout = stdout;
        this.stderr = stderr;
        Json = json;
        Quiet = quiet;
    }

    public bool Json { get; }

    public bool Quiet { get; }

    public TextWriter Stdout => stdout;

    public static CliOutput Of(ParseResult parse) => new(
        parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, parse.GetValue(JsonOption), parse.GetValue(QuietOption));

    /// <summary>The command's result: <paramref name="json"/> as one line of JSON with --json, else <paramref name="text"/> unless --quiet.</summary>
    public int Result(JsonNode json, string text)
    {
        if (Json) stdout.WriteLine(json.ToJsonString());
        else if (!Quiet) stdout.Write(text.EndsWith('\n') ? text : text + "\n");
        stdout.Flush();
        return CliApp.Success;
    }

    /// <summary><see cref="Result(JsonNode, string)"/> with <paramref name="value"/> serialised like the run files (PpoRun.Json settings, one line).</summary>
    public int Result(object value, string text) => Result(JsonSerializer.SerializeToNode(value, Compact)!, text);

    /// <summary>A log line (a stage's messages, notes) on standard error unless --quiet.</summary>
    public void Log(string line)
    {
        if (!Quiet) stderr.WriteLine(line);
    }

    /// <summary>A warning: standard error even with --quiet (it may need action).</summary>
    public void Warn(string line) => stderr.WriteLine($"warning: {line}");

    /// <summary>
    /// Runs <paramref name="work"/> with a progress display on standard error: Spectre.Console bars (ETA, the stage's
    /// key metric) on a terminal, one plain line per report otherwise (pipes, CI, tests), nothing with --quiet.
    /// </summary>
    public T WithProgress<T>(Func<ProgressSink, T> work)
    {
        if (Quiet) return work(ProgressSink.None);
        if (ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected) return SpectreProgress.Run(work);
        return work(new PlainProgress(stderr));
    }
}
