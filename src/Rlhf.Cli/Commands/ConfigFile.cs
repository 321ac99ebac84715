using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlhf.IO;

namespace Rlhf.Cli.Commands;

/// <summary>
/// --config FILE: a JSON object of settings (the property names of the stage's options record, case-insensitive, as
/// written to a run's config.json) laid over the defaults; options given on the command line override the file.
/// </summary>
internal static class ConfigFile
{
    public static Option<FileInfo> Option() => new("--config")
    {
        Description = "JSON file of settings (names as in a run's config.json); options given on the command line override it",
    };

    /// <summary><paramref name="defaults"/> with the file's properties replacing theirs; unknown names and bad values name the file.</summary>
    public static T Load<T>(string path, T defaults, JsonSerializerOptions json)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"config file '{path}' does not exist.");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{path}: the config must be a JSON object.");
            var merged = JsonSerializer.SerializeToNode(defaults, json)!.AsObject();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                string? name = null;
                foreach (var k in merged) if (string.Equals(k.Key, p.Name, StringComparison.OrdinalIgnoreCase)) name = k.Key;
                if (name is null) throw new InvalidInputException($"{path}: unknown setting '{p.Name}'.");
                merged[name] = JsonNode.Parse(p.Value.GetRawText());
            }

            return merged.Deserialize<T>(json)!;
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: {e.Message}");
        }
    }

    /// <summary>The option's value when it was given on the command line, else <paramref name="current"/>.</summary>
    public static T Pick<T>(ParseResult parse, Option<T> option, T current) =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option)! : current;
}
