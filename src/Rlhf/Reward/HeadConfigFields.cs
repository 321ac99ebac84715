using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlhf.Formats;

namespace Rlhf.Reward;

/// <summary>
/// Typed, validated access to head_config.json: a missing field, a null, a wrong JSON type or a value out of range is
/// a <see cref="CheckpointFormatException"/> naming the file, the field and the value (exit 2), never a
/// NullReferenceException or a System.Text.Json conversion error.
/// </summary>
public sealed class HeadConfigFields(string path, JsonObject config)
{
    public string Path => path;

    public JsonObject Json => config;

    /// <summary>A string field; null when absent and <paramref name="required"/> is false.</summary>
    public string? String(string key, bool required = true)
    {
        var v = Value(key, "a string", required);
        if (v is null) return null;
        return v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Bad(key, v, "a string");
    }

    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int Int(string key, int min, int max)
    {
        var v = Value(key, "an integer", required: true)!;
        if (v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out JsonElement e) || !e.TryGetInt64(out long n)) throw Bad(key, v, "an integer");
        if (n < min || n > max) throw Bad(key, v, $"an integer in [{min}, {max}]");
        return (int)n;
    }

    /// <summary>A finite number (optionally &gt; 0); <paramref name="fallback"/> when absent.</summary>
    public double Double(string key, double fallback, bool positive = false)
    {
        var v = Value(key, "a number", required: false);
        if (v is null) return fallback;
        if (v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out JsonElement e) || !e.TryGetDouble(out double x) || !double.IsFinite(x))
            throw Bad(key, v, "a finite number");
        if (positive && !(x > 0)) throw Bad(key, v, "a number > 0");
        return x;
    }

    /// <summary>One of <paramref name="allowed"/>; the first when absent.</summary>
    public string OneOf(string key, params string[] allowed)
    {
        string? s = String(key, required: false);
        if (s is null) return allowed[0];
        return Array.IndexOf(allowed, s) >= 0 ? s : throw Bad(key, config[key]!, $"one of {string.Join(", ", allowed.Select(a => $"\"{a}\""))}");
    }

    /// <summary>An array of strings with at least one element.</summary>
    public string[] Strings(string key)
    {
        var node = config[key];
        if (node is not JsonArray array || array.Count == 0) throw node is null ? Missing(key) : Bad(key, node, "a non-empty array of strings");
        var result = new string[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            if (array[i] is not JsonValue item || item.GetValueKind() != JsonValueKind.String) throw Bad($"{key}[{i}]", array[i], "a string");
            result[i] = item.GetValue<string>();
        }

        return result;
    }

    /// <summary>An error naming this file and <paramref name="key"/>.</summary>
    public CheckpointFormatException Error(string key, string message) => new(path, key, message);

    private JsonValue? Value(string key, string expected, bool required)
    {
        if (!config.TryGetPropertyValue(key, out var node) || node is null) return required ? throw Missing(key) : null;
        return node as JsonValue ?? throw Bad(key, node, expected);
    }

    private CheckpointFormatException Missing(string key) => new(path, key, $"missing field \"{key}\"");

    private CheckpointFormatException Bad(string key, JsonNode? node, string expected) =>
        new(path, key, string.Create(CultureInfo.InvariantCulture, $"field \"{key}\" is {node?.ToJsonString() ?? "null"}, expected {expected}"));
}
