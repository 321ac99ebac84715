using System.Text;
using System.Text.Json;

namespace Rlhf.IO;

/// <summary>One JSON object read from a JSONL file, with where it came from.</summary>
public readonly record struct JsonLine(string File, int Line, JsonElement Value)
{
    public InvalidInputException Error(string message) => new(File, Line, message);

    /// <summary>A required string property; a clear error naming file, line and property otherwise.</summary>
    public string RequireString(string property)
    {
        if (!Value.TryGetProperty(property, out var v) || v.ValueKind != JsonValueKind.String)
        {
            throw Error($"missing string property \"{property}\"");
        }

        return v.GetString()!;
    }

    public bool TryGet(string property, out JsonElement value) => Value.TryGetProperty(property, out value);
}

/// <summary>JSONL (one JSON object per line) reading and atomic writing. Blank lines are allowed and skipped.</summary>
public static class JsonLines
{
    public static IEnumerable<JsonLine> Read(string path)
    {
        if (!System.IO.File.Exists(path))
        {
            throw new InvalidInputException($"{path}: file not found");
        }

        int lineNumber = 0;
        using var reader = new StreamReader(path, StrictUtf8, detectEncodingFromByteOrderMarks: true);
        while (true)
        {
            string? line;
            try
            {
                line = reader.ReadLine();
            }
            catch (DecoderFallbackException)
            {
                // The reader decodes ahead in blocks, so the line is found again from the bytes.
                throw new InvalidInputException(path, FirstInvalidUtf8Line(path), "not valid UTF-8 text");
            }

            if (line is null) yield break;
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement element;
            try
            {
                using var doc = JsonDocument.Parse(line);
                element = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new InvalidInputException(path, lineNumber, $"not valid JSON ({e.Message})");
            }

            if (element.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidInputException(path, lineNumber, $"expected a JSON object, found {element.ValueKind}");
            }

            yield return new JsonLine(path, lineNumber, element);
        }
    }

    /// <summary>UTF-8 that throws on invalid bytes: the default decoder turns them into U+FFFD, which would put text
    /// nobody wrote into prompts and completions without a word.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static int FirstInvalidUtf8Line(string path)
    {
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        int line = 1, start = 0;
        for (int i = 0; i <= bytes.Length; i++)
        {
            if (i < bytes.Length && bytes[i] != (byte)'\n') continue;
            if (!System.Text.Unicode.Utf8.IsValid(bytes.AsSpan(start, i - start))) return line;
            line++;
            start = i + 1;
        }

        return line - 1;
    }

    /// <summary>Writes one object per line through <paramref name="write"/>; the file appears only when complete.</summary>
    public static void Write<T>(string path, IEnumerable<T> records, Action<Utf8JsonWriter, T> write, bool overwrite = true)
    {
        AtomicFile.Write(path, stream =>
        {
            var options = new JsonWriterOptions { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            foreach (var record in records)
            {
                using (var writer = new Utf8JsonWriter(stream, options))
                {
                    write(writer, record);
                }

                stream.WriteByte((byte)'\n');
            }
        }, overwrite);
    }
}
