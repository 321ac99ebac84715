using System.Text.Json;
using Microsoft.VisualBasic.FileIO;
using Rlhf.IO;

namespace Rlhf.Classification;

/// <summary>One training example for a sequence classifier.</summary>
public sealed record LabelledText(string Text, string Label);

/// <summary>
/// Reads labelled text from CSV (header row; quoted fields may span lines) or JSONL (one object per line; a label may
/// be a string or a number, kept as its text). Column names are configurable. An empty text or label, or a
/// missing column, is an error naming file and line: nothing is dropped silently.
/// </summary>
public static class LabelledTexts
{
    public static List<LabelledText> Read(string path, string textColumn = "text", string labelColumn = "label")
    {
        ArgumentException.ThrowIfNullOrEmpty(textColumn);
        ArgumentException.ThrowIfNullOrEmpty(labelColumn);
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: file not found");
        return path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? ReadCsv(path, textColumn, labelColumn) : ReadJsonl(path, textColumn, labelColumn);
    }

    /// <summary>The distinct labels in ordinal order: class i is labels[i].</summary>
    public static string[] LabelNames(IReadOnlyList<LabelledText> data)
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var x in data) set.Add(x.Label);
        return [.. set];
    }

    private static List<LabelledText> ReadJsonl(string path, string textColumn, string labelColumn)
    {
        var result = new List<LabelledText>();
        foreach (var line in JsonLines.Read(path))
        {
            string text = line.RequireString(textColumn);
            if (!line.TryGet(labelColumn, out var l) || (l.ValueKind != JsonValueKind.String && l.ValueKind != JsonValueKind.Number))
                throw line.Error($"missing string or number property \"{labelColumn}\"");
            string label = l.ValueKind == JsonValueKind.String ? l.GetString()! : l.GetRawText();
            if (text.Length == 0) throw line.Error($"empty \"{textColumn}\"");
            if (label.Length == 0) throw line.Error($"empty \"{labelColumn}\"");
            result.Add(new LabelledText(text, label));
        }

        return result;
    }

    private static List<LabelledText> ReadCsv(string path, string textColumn, string labelColumn)
    {
        using var parser = new TextFieldParser(path) { TextFieldType = FieldType.Delimited, HasFieldsEnclosedInQuotes = true, TrimWhiteSpace = false };
        parser.SetDelimiters(",");
        string[] header = parser.ReadFields() ?? throw new InvalidInputException(path, 1, "empty file; expected a header row");
        int textCol = Array.IndexOf(header, textColumn), labelCol = Array.IndexOf(header, labelColumn);
        if (textCol < 0) throw new InvalidInputException(path, 1, $"no column \"{textColumn}\" in the header '{string.Join(",", header)}'");
        if (labelCol < 0) throw new InvalidInputException(path, 1, $"no column \"{labelColumn}\" in the header '{string.Join(",", header)}'");
        var result = new List<LabelledText>();
        while (!parser.EndOfData)
        {
            long line = parser.LineNumber;
            string[]? fields;
            try
            {
                fields = parser.ReadFields();
            }
            catch (MalformedLineException e)
            {
                throw new InvalidInputException(path, (int)e.LineNumber, "malformed CSV line (unbalanced quotes?)");
            }

            if (fields is null || (fields.Length == 1 && string.IsNullOrWhiteSpace(fields[0]))) continue;
            if (fields.Length != header.Length) throw new InvalidInputException(path, (int)line, $"expected {header.Length} fields, found {fields.Length}");
            string text = fields[textCol], label = fields[labelCol].Trim();
            if (text.Length == 0) throw new InvalidInputException(path, (int)line, $"empty \"{textColumn}\"");
            if (label.Length == 0) throw new InvalidInputException(path, (int)line, $"empty \"{labelColumn}\"");
            result.Add(new LabelledText(text, label));
        }

        return result;
    }
}
