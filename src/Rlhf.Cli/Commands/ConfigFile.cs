using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlhf.IO;

namespace Rlhf.Cli.Commands;

/// <summary>
/// --config FILE on every command with options: a JSON object of settings. A key names one of the command's options
/// without its dashes ("batch-size", "batch_size" and "batchSize" all name --batch-size); an array gives a repeatable
/// option several values. Commands that run a stage whose options record is saved as the run's config.json (ppo, demo)
/// also accept that record's property names. Options given on the command line override the file; unknown keys and
/// bad values are bad input naming the file, the line and the key.
/// </summary>
internal static class ConfigFile
{
    private sealed record Binding(Option<FileInfo> Option, Type? Record);

    // Which commands have --config; weak so that building the command tree again does not keep the old one alive.
    private static readonly ConditionalWeakTable<Command, Binding> Bindings = [];

    /// <summary>Adds --config to <paramref name="command"/>; <paramref name="record"/>'s property names are also accepted (read by the command with <see cref="Load{T}"/>).</summary>
    public static Option<FileInfo> AddTo(Command command, Type? record = null)
    {
        var option = new Option<FileInfo>("--config")
        {
            Description = "JSON file of settings: {\"option-name\": value, ...}" + (record is null ? "" : $" (or {record.Name} property names, as in the run's config.json)") +
                "; options given on the command line override it [default: none]",
        };
        command.Options.Add(option);
        Bindings.AddOrUpdate(command, new Binding(option, record));
        return option;
    }

    /// <summary>
    /// <paramref name="args"/> plus the --config file's settings as option tokens (for the options not given on the
    /// command line), so the file's values are converted, validated and required like typed ones. Unchanged when the
    /// invoked command has no --config or none was given.
    /// </summary>
    public static (string[] Args, Dictionary<Option, Setting> Injected) Expand(ParseResult parse, string[] args)
    {
        var injected = new Dictionary<Option, Setting>();
        if (!Bindings.TryGetValue(parse.CommandResult.Command, out var binding)) return (args, injected);
        var result = parse.GetResult(binding.Option);
        if (result is null || result.Tokens.Count == 0) return (args, injected);
        string path = result.Tokens[0].Value;
        var options = new Dictionary<string, Option>();
        foreach (var o in AllOptions(parse.CommandResult.Command)) options[Normalise(o.Name)] = o;
        var recordNames = new HashSet<string>();
        if (binding.Record is { } t) foreach (var p in t.GetProperties()) recordNames.Add(Normalise(p.Name));

        var extra = new List<string>();
        foreach (var (key, value, line) in Read(path))
        {
            string n = Normalise(key);
            if (options.TryGetValue(n, out var option) && option != binding.Option && option is not HelpOption)
            {
                if (parse.GetResult(option) is { Implicit: false }) continue; // the command line wins
                // A flag's value would otherwise become a stray token ("Unrecognized command or argument 'yes'") naming no file or key.
                if (option.ValueType == typeof(bool) && value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw new InvalidInputException($"{path}:{line}: setting '{key}' must be true or false, got {value.GetRawText()}");
                injected[option] = new Setting(path, key, line);
                foreach (string v in Values(path, key, line, value)) extra.Add($"{option.Name}={v}");
            }
            else if (!recordNames.Contains(n))
            {
                var known = new StringBuilder();
                foreach (var o in parse.CommandResult.Command.Options)
                    if (o != binding.Option && o is not HelpOption) known.Append(known.Length == 0 ? "" : ", ").Append(o.Name.TrimStart('-'));
                throw new InvalidInputException($"{path}:{line}: unknown setting '{key}' for `{CommandPath(parse.CommandResult.Command)}` (settings: {known}{(binding.Record is null ? "" : $", or {binding.Record.Name} properties")})");
            }
        }

        return (extra.Count == 0 ? args : [.. args, .. extra], injected);
    }

    /// <summary>Where an injected option's value came from, for error messages.</summary>
    public sealed record Setting(string Path, string Key, int Line);

    /// <summary>
    /// <paramref name="defaults"/> with the file's properties that name properties of <typeparamref name="T"/> replacing
    /// theirs (other keys are option names, applied by <see cref="Expand"/>); bad values name the file.
    /// </summary>
    public static T Load<T>(string path, T defaults, JsonSerializerOptions json)
    {
        var merged = JsonSerializer.SerializeToNode(defaults, json)!.AsObject();
        foreach (var (key, value, line) in Read(path))
        {
            string? name = null;
            foreach (var k in merged) if (Normalise(k.Key) == Normalise(key)) name = k.Key;
            if (name is not null) merged[name] = JsonNode.Parse(value.GetRawText());
        }

        try
        {
            return merged.Deserialize<T>(json)!;
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: {e.Message}");
        }
    }

    /// <summary>The file name of <see cref="SaveEffective"/>.</summary>
    public const string EffectiveFileName = "cli-config.json";

    /// <summary>
    /// Writes the invoked command's effective settings (defaults, then the config file, then the command line) to
    /// <paramref name="directory"/>/cli-config.json, in the --config format, so the file reruns the command as it ran.
    /// </summary>
    public static void SaveEffective(ParseResult parse, string directory)
    {
        var settings = new JsonObject();
        var command = parse.CommandResult.Command;
        foreach (var option in command.Options)
        {
            if (option is HelpOption || option.Name is "--config" or "--force") continue;
            if (parse.GetResult(option) is not { } result) continue;
            settings[option.Name.TrimStart('-')] = ToJson(result.GetValueOrDefault<object?>());
        }

        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, EffectiveFileName), settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        FileSystemInfo f => f.FullName,
        string s => s,
        bool b => b,
        Enum e => e.ToString(),
        System.Collections.IEnumerable items => new JsonArray([.. items.Cast<object?>().Select(ToJson)]),
        _ => JsonSerializer.SerializeToNode(value),
    };

    /// <summary>The option's value when it was given on the command line (or by the config file), else <paramref name="current"/>.</summary>
    public static T Pick<T>(ParseResult parse, Option<T> option, T current) =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option)! : current;

    /// <summary>The top-level properties of the file with the line each starts on (1-based).</summary>
    private static List<(string Key, JsonElement Value, int Line)> Read(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"config file '{path}' does not exist.");
        byte[] bytes = File.ReadAllBytes(path);
        // Editors on Windows save a UTF-8 BOM, which JsonDocument rejects; the JSONL and CSV readers accept it too.
        if (bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble)) bytes = bytes[Encoding.UTF8.Preamble.Length..];
        var options = new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, options);
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}:{(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{path}: the config must be a JSON object.");
            var lines = KeyLines(bytes);
            var result = new List<(string, JsonElement, int)>();
            int i = 0;
            foreach (var p in doc.RootElement.EnumerateObject()) result.Add((p.Name, p.Value.Clone(), i < lines.Count ? lines[i++] : 0));
            return result;
        }
    }

    // The line of each top-level property name, in document order (JsonDocument keeps no positions).
    private static List<int> KeyLines(byte[] bytes)
    {
        var lines = new List<int>();
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        int line = 1;
        long counted = 0;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1) continue;
            for (long b = counted; b < reader.TokenStartIndex; b++) if (bytes[b] == (byte)'\n') line++;
            counted = reader.TokenStartIndex;
            lines.Add(line);
        }

        return lines;
    }

    private static IEnumerable<string> Values(string path, string key, int line, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                yield return value.GetString()!;
                break;
            case JsonValueKind.Number:
                yield return value.GetRawText();
                break;
            case JsonValueKind.True or JsonValueKind.False:
                yield return value.ValueKind == JsonValueKind.True ? "true" : "false";
                break;
            case JsonValueKind.Array:
                foreach (var item in value.EnumerateArray())
                {
                    if (item.ValueKind is JsonValueKind.Array or JsonValueKind.Object or JsonValueKind.Null)
                        throw new InvalidInputException($"{path}:{line}: setting '{key}': array items must be strings, numbers or booleans");
                    foreach (string v in Values(path, key, line, item)) yield return v;
                }

                break;
            default:
                throw new InvalidInputException($"{path}:{line}: setting '{key}' must be a string, number, boolean or array, got {value.ValueKind}");
        }
    }

    private static IEnumerable<Option> AllOptions(Command command)
    {
        foreach (var o in command.Options) yield return o;
        foreach (var parent in Ancestors(command))
            foreach (var o in parent.Options)
                if (o.Recursive) yield return o;
    }

    private static IEnumerable<Command> Ancestors(Command command)
    {
        foreach (var p in command.Parents)
        {
            if (p is not Command c) continue;
            yield return c;
            foreach (var a in Ancestors(c)) yield return a;
        }
    }

    private static string CommandPath(Command command)
    {
        var names = new List<string> { command.Name };
        for (var c = command; c.Parents.FirstOrDefault() is Command p; c = p) names.Insert(0, p.Name);
        return string.Join(' ', names);
    }

    private static string Normalise(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char ch in name) if (ch is not '-' and not '_') sb.Append(char.ToLowerInvariant(ch));
        return sb.ToString();
    }
}
