using System.Globalization;
using System.Text.Json.Nodes;

namespace Rlhf.Onnx;

/// <summary>Class names of a Hugging Face classifier: config.json's id2label ("0": "non-toxic", ...).</summary>
public sealed class ClassifierLabels
{
    private readonly string[] names;

    private ClassifierLabels(string source, string[] names)
    {
        Source = source;
        this.names = names;
    }

    /// <summary>The config file the labels came from (or a description when made in code).</summary>
    public string Source { get; }

    public int Count => names.Length;

    public IReadOnlyList<string> Names => names;

    public static ClassifierLabels FromNames(IReadOnlyList<string> labels, string source = "(labels)") => new(source, [.. labels]);

    /// <summary>Reads id2label from <paramref name="configPath"/>; ids must be 0..n−1. Throws <see cref="OnnxModelException"/> naming the file when it is malformed.</summary>
    public static ClassifierLabels Read(string configPath)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllBytes(configPath));
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new OnnxModelException(configPath, "id2label", $"is not valid JSON: {e.Message}");
        }

        if (root is not JsonObject obj || obj["id2label"] is not JsonObject map)
            throw new OnnxModelException(configPath, "id2label", "has no id2label object.");
        var labels = new string[map.Count];
        foreach (var kv in map)
        {
            if (!int.TryParse(kv.Key, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= labels.Length)
                throw new OnnxModelException(configPath, "id2label", $"id2label key '{kv.Key}' is not an id in [0, {labels.Length}).");
            labels[id] = kv.Value?.GetValue<string>() ?? throw new OnnxModelException(configPath, "id2label", $"id2label[{kv.Key}] is null.");
        }

        return new ClassifierLabels(configPath, labels);
    }

    /// <summary>The index of <paramref name="label"/> (ordinal, then case-insensitive); an unknown name throws <see cref="OnnxModelException"/> naming the file, the label and the known labels.</summary>
    public int IndexOf(string label)
    {
        ArgumentNullException.ThrowIfNull(label);
        int i = Array.IndexOf(names, label);
        if (i >= 0) return i;
        for (int j = 0; j < names.Length; j++)
        {
            if (string.Equals(names[j], label, StringComparison.OrdinalIgnoreCase)) return j;
        }

        throw new OnnxModelException(Source, label, $"unknown label '{label}' (labels: {string.Join(", ", names)}).");
    }
}
