using System.Globalization;
using System.Text.Json;
using Microsoft.VisualBasic.FileIO;
using Rlhf.IO;

namespace Rlhf.Feedback;

/// <summary>
/// Imports labelers' rankings and thumbs feedback from JSONL and CSV files, validating every row against the
/// completions that were shown. Valid rows are accepted, invalid rows are listed with file, line and reason.
/// Several files can be imported into one importer; a labeler ranking the same prompt twice is rejected even
/// across files.
/// </summary>
/// <remarks>
/// JSONL rows: <c>{"labeler": "ana", "prompt_id": "p1", "ranks": {"c1": 2, "c2": 1, "c3": "F"}}</c> or
/// <c>{"labeler": "ana", "prompt_id": "p1", "completion_id": "c2", "thumb": "up"}</c>.
/// CSV (header required): <c>labeler,prompt_id,completion_id,rank</c> with one row per completion, or
/// <c>labeler,prompt_id,completion_id,thumb</c>. Ranks are 1..n (1 = best, equal ranks are ties) or F.
/// </remarks>
public sealed class RankingImporter(IReadOnlyDictionary<string, CompletionSet> completions)
{
    private readonly HashSet<(string Labeler, string PromptId)> rankedItems = [];
    private readonly HashSet<(string Labeler, string PromptId, string CompletionId)> thumbedItems = [];

    public List<Ranking> Accepted { get; } = [];

    public List<ThumbFeedback> Thumbs { get; } = [];

    public List<RejectedRow> Rejected { get; } = [];

    public int AcceptedRows { get; private set; }

    public string Summary =>
        $"{AcceptedRows} row(s) accepted ({Accepted.Count} ranking(s), {Thumbs.Count} thumb(s)), {Rejected.Count} rejected";

    public void Import(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: file not found");
        int before = AcceptedRows + Rejected.Count;
        if (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)) ImportCsv(path);
        else ImportJsonl(path);
        // An empty export (or a CSV with only its header) is almost always the wrong file; writing nothing would hide it.
        if (AcceptedRows + Rejected.Count == before) throw new InvalidInputException($"{path}: no rows (expected rankings or thumbs feedback)");
    }

    private void ImportJsonl(string path)
    {
        int lineNumber = 0;
        foreach (string text in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                using var doc = JsonDocument.Parse(text);
                var row = new JsonLine(path, lineNumber, doc.RootElement);
                if (row.Value.ValueKind != JsonValueKind.Object) throw row.Error("expected a JSON object");
                if (row.TryGet("ranks", out _)) AcceptRanking(ParseRanking(row));
                else if (row.TryGet("thumb", out _)) AcceptThumb(ParseThumb(RequiredId(row, "labeler"), RequiredId(row, "prompt_id"),
                    RequiredId(row, "completion_id"), row.RequireString("thumb"), path, lineNumber));
                else throw row.Error("expected \"ranks\" (a ranking) or \"thumb\" (thumbs feedback)");
                AcceptedRows++;
            }
            catch (JsonException e)
            {
                Rejected.Add(new RejectedRow(path, lineNumber, $"not valid JSON ({e.Message})"));
            }
            catch (InvalidInputException e)
            {
                Rejected.Add(new RejectedRow(path, lineNumber, StripLocation(e)));
            }
        }
    }

    private Ranking ParseRanking(JsonLine row)
    {
        string labeler = RequiredId(row, "labeler");
        string promptId = RequiredId(row, "prompt_id");
        var set = FindSet(promptId, row.File, row.Line);
        row.TryGet("ranks", out var ranks);
        if (ranks.ValueKind != JsonValueKind.Object) throw row.Error("\"ranks\" must be an object {completion_id: rank}");
        var result = new Rank?[set.Completions.Count];
        foreach (var entry in ranks.EnumerateObject())
        {
            int index = set.IndexOf(entry.Name);
            if (index < 0) throw row.Error($"unknown completion \"{entry.Name}\" for prompt \"{promptId}\"");
            // JSON allows a key twice; the second would overwrite the first and leave another completion unranked.
            if (result[index] is not null) throw row.Error($"completion \"{entry.Name}\" is ranked twice (duplicate key in \"ranks\")");
            string raw = entry.Value.ValueKind switch
            {
                JsonValueKind.Number => entry.Value.GetRawText(),
                JsonValueKind.String => entry.Value.GetString()!,
                _ => throw row.Error($"rank of \"{entry.Name}\" must be a number 1..{set.Completions.Count} or \"F\""),
            };
            result[index] = ParseRank(raw, set, entry.Name, row.File, row.Line);
        }

        return new Ranking(labeler, promptId, Complete(result, set, row.File, row.Line), $"{row.File}:{row.Line}");
    }

    private void ImportCsv(string path)
    {
        using var parser = new TextFieldParser(path) { TextFieldType = FieldType.Delimited, HasFieldsEnclosedInQuotes = true };
        parser.SetDelimiters(",");
        string[]? header = parser.ReadFields();
        if (header is null) throw new InvalidInputException(path, 1, "empty file; expected a header labeler,prompt_id,completion_id,rank|thumb");
        header = Array.ConvertAll(header, h => h.Trim().ToLowerInvariant());
        int labelerCol = Array.IndexOf(header, "labeler"), promptCol = Array.IndexOf(header, "prompt_id"),
            completionCol = Array.IndexOf(header, "completion_id"), rankCol = Array.IndexOf(header, "rank"), thumbCol = Array.IndexOf(header, "thumb");
        if (labelerCol < 0 || promptCol < 0 || completionCol < 0 || (rankCol < 0) == (thumbCol < 0))
        {
            throw new InvalidInputException(path, 1, $"header must be labeler,prompt_id,completion_id and one of rank or thumb; found '{string.Join(",", header)}'");
        }

        // Rank rows are grouped per (labeler, prompt); the group is validated once all its rows are read.
        var groups = new Dictionary<(string, string), (int FirstLine, List<int> Lines, Rank?[] Ranks)>();
        var order = new List<(string, string)>();
        while (!parser.EndOfData)
        {
            long lineNumber = parser.LineNumber;
            string[]? fields;
            try
            {
                fields = parser.ReadFields();
            }
            catch (MalformedLineException e)
            {
                Rejected.Add(new RejectedRow(path, (int)e.LineNumber, "malformed CSV line (unbalanced quotes?)"));
                continue;
            }

            if (fields is null || (fields.Length == 1 && string.IsNullOrWhiteSpace(fields[0]))) continue;
            int line = (int)lineNumber;
            try
            {
                if (fields.Length != header.Length) throw new InvalidInputException(path, line, $"expected {header.Length} fields, found {fields.Length}");
                string labeler = Required(fields[labelerCol], "labeler", path, line);
                string promptId = Required(fields[promptCol], "prompt_id", path, line);
                string completionId = Required(fields[completionCol], "completion_id", path, line);
                if (thumbCol >= 0)
                {
                    AcceptThumb(ParseThumb(labeler, promptId, completionId, fields[thumbCol].Trim(), path, line));
                    AcceptedRows++;
                    continue;
                }

                var set = FindSet(promptId, path, line);
                int index = set.IndexOf(completionId);
                if (index < 0) throw new InvalidInputException(path, line, $"unknown completion \"{completionId}\" for prompt \"{promptId}\"");
                var rank = ParseRank(fields[rankCol].Trim(), set, completionId, path, line);
                var key = (labeler, promptId);
                if (!groups.TryGetValue(key, out var group))
                {
                    group = (line, [], new Rank?[set.Completions.Count]);
                    groups[key] = group;
                    order.Add(key);
                }

                if (group.Ranks[index] is not null)
                {
                    throw new InvalidInputException(path, line, $"labeler \"{labeler}\" ranked completion \"{completionId}\" of prompt \"{promptId}\" twice");
                }

                group.Ranks[index] = rank;
                group.Lines.Add(line);
            }
            catch (InvalidInputException e)
            {
                Rejected.Add(new RejectedRow(path, line, StripLocation(e)));
            }
        }

        foreach (var key in order)
        {
            var (firstLine, lines, ranks) = groups[key];
            try
            {
                var set = completions[key.Item2];
                AcceptRanking(new Ranking(key.Item1, key.Item2, Complete(ranks, set, path, firstLine), $"{path}:{firstLine}"));
                AcceptedRows += lines.Count;
            }
            catch (InvalidInputException e)
            {
                foreach (int line in lines) Rejected.Add(new RejectedRow(path, line, StripLocation(e)));
            }
        }
    }

    private void AcceptRanking(Ranking ranking)
    {
        if (!rankedItems.Add((ranking.Labeler, ranking.PromptId)))
        {
            throw new InvalidInputException($"labeler \"{ranking.Labeler}\" already ranked prompt \"{ranking.PromptId}\"");
        }

        Accepted.Add(ranking);
    }

    private void AcceptThumb(ThumbFeedback thumb)
    {
        if (!thumbedItems.Add((thumb.Labeler, thumb.PromptId, thumb.CompletionId)))
        {
            throw new InvalidInputException($"labeler \"{thumb.Labeler}\" already rated completion \"{thumb.CompletionId}\" of prompt \"{thumb.PromptId}\"");
        }

        Thumbs.Add(thumb);
    }

    private ThumbFeedback ParseThumb(string labeler, string promptId, string completionId, string thumb, string path, int line)
    {
        var set = FindSet(promptId, path, line);
        if (set.IndexOf(completionId) < 0) throw new InvalidInputException(path, line, $"unknown completion \"{completionId}\" for prompt \"{promptId}\"");
        bool up = thumb.ToLowerInvariant() switch
        {
            "up" or "+1" or "1" => true,
            "down" or "-1" or "0" => false,
            _ => throw new InvalidInputException(path, line, $"thumb must be up or down, found \"{thumb}\""),
        };
        return new ThumbFeedback(labeler, promptId, completionId, up, $"{path}:{line}");
    }

    private CompletionSet FindSet(string promptId, string path, int line) =>
        completions.TryGetValue(promptId, out var set) ? set : throw new InvalidInputException(path, line, $"unknown prompt \"{promptId}\"");

    private static Rank ParseRank(string raw, CompletionSet set, string completionId, string path, int line)
    {
        if (raw.Equals("F", StringComparison.OrdinalIgnoreCase)) return Rank.Failed;
        int n = set.Completions.Count;
        if (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1 || value > n)
        {
            throw new InvalidInputException(path, line, $"rank \"{raw}\" of completion \"{completionId}\" is outside 1..{n} (or F)");
        }

        return Rank.Of(value);
    }

    private static Rank[] Complete(Rank?[] ranks, CompletionSet set, string path, int line)
    {
        var missing = new List<string>();
        var result = new Rank[ranks.Length];
        for (int i = 0; i < ranks.Length; i++)
        {
            if (ranks[i] is { } r) result[i] = r;
            else missing.Add(set.Completions[i].Id);
        }

        if (missing.Count > 0)
        {
            throw new InvalidInputException(path, line, $"prompt \"{set.PromptId}\" is missing ranks for completion(s) {string.Join(", ", missing)}");
        }

        return result;
    }

    // An empty labeler or id would merge unrelated rows under "" (the CSV reader's Required does the same check).
    private static string RequiredId(JsonLine row, string name)
    {
        string value = row.RequireString(name);
        return string.IsNullOrWhiteSpace(value) ? throw row.Error($"empty {name}") : value;
    }

    private static string Required(string value, string column, string path, int line) =>
        string.IsNullOrWhiteSpace(value) ? throw new InvalidInputException(path, line, $"empty {column}") : value.Trim();

    // The row's own file and line are recorded beside the reason.
    private static string StripLocation(InvalidInputException e) =>
        e.File is not null && e.Message.StartsWith($"{e.File}:{e.Line}: ", StringComparison.Ordinal)
            ? e.Message[$"{e.File}:{e.Line}: ".Length..]
            : e.Message;
}
