using System.Text;
using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Cai;

/// <summary>A prompt to answer, critique and revise (or to compare replies to).</summary>
public sealed record RedTeamPrompt(string Id, string Text);

/// <summary>
/// Reads red-team prompts: JSONL ({"prompt"} or {"goal"}, optional "id"/"prompt_id") or CSV with a header that has a
/// "prompt" or "goal" column (AdvBench's harmful_behaviors.csv). Ids default to "p{line}".
/// </summary>
public static class RedTeamPrompts
{
    /// <summary>The first <paramref name="limit"/> prompts (all when null) of a .csv or JSONL file.</summary>
    public static List<RedTeamPrompt> Load(string path, int? limit = null)
    {
        if (limit is <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "limit must be positive");
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: file not found");
        var all = path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? LoadCsv(path, limit) : LoadJsonl(path, limit);
        if (all.Count == 0) throw new InvalidInputException($"{path}: no prompts");
        return all;
    }

    private static List<RedTeamPrompt> LoadJsonl(string path, int? limit)
    {
        var r = new List<RedTeamPrompt>();
        foreach (var line in JsonLines.Read(path))
        {
            string text = line.TryGet("prompt", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()!
                : line.TryGet("goal", out var g) && g.ValueKind == JsonValueKind.String ? g.GetString()!
                : throw line.Error("missing string property \"prompt\" (or \"goal\")");
            if (string.IsNullOrWhiteSpace(text)) throw line.Error("empty prompt");
            string id = line.TryGet("prompt_id", out var pid) && pid.ValueKind == JsonValueKind.String ? pid.GetString()!
                : line.TryGet("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : $"p{line.Line}";
            r.Add(new RedTeamPrompt(id, text));
            if (r.Count == limit) break;
        }

        return r;
    }

    private static List<RedTeamPrompt> LoadCsv(string path, int? limit)
    {
        var r = new List<RedTeamPrompt>();
        using var reader = new StreamReader(path, Encoding.UTF8);
        int line = 1;
        var header = ReadRecord(reader, ref line, path) ?? throw new InvalidInputException($"{path}: empty CSV");
        int col = header.FindIndex(h => h.Trim() == "prompt");
        if (col < 0) col = header.FindIndex(h => h.Trim() == "goal");
        if (col < 0) throw new InvalidInputException(path, 1, $"no \"prompt\" or \"goal\" column (found: {string.Join(", ", header)})");
        while (true)
        {
            int start = line;
            var rec = ReadRecord(reader, ref line, path);
            if (rec is null) break;
            if (rec.Count == 1 && rec[0].Length == 0) continue;
            if (col >= rec.Count) throw new InvalidInputException(path, start, $"{rec.Count} field(s), the prompt column is number {col + 1}");
            if (string.IsNullOrWhiteSpace(rec[col])) throw new InvalidInputException(path, start, "empty prompt");
            r.Add(new RedTeamPrompt($"p{start}", rec[col]));
            if (r.Count == limit) break;
        }

        return r;
    }

    /// <summary>One RFC 4180 record (quoted fields may hold commas, doubled quotes and newlines); null at the end.</summary>
    private static List<string>? ReadRecord(StreamReader reader, ref int line, string path)
    {
        if (reader.Peek() < 0) return null;
        var fields = new List<string>();
        var sb = new StringBuilder();
        bool quoted = false;
        int startLine = line;
        while (true)
        {
            int ch = reader.Read();
            if (ch < 0)
            {
                if (quoted) throw new InvalidInputException(path, startLine, "unterminated quoted field");
                break;
            }

            char c = (char)ch;
            if (quoted)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        sb.Append('"');
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    if (c == '\n') line++;
                    sb.Append(c);
                }
            }
            else if (c == '"' && sb.Length == 0)
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(sb.ToString());
                sb.Clear();
            }
            else if (c == '\n')
            {
                line++;
                break;
            }
            else if (c != '\r')
            {
                sb.Append(c);
            }
        }

        fields.Add(sb.ToString());
        return fields;
    }
}
