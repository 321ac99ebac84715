using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Feedback;

/// <summary>
/// Writes accepted rankings (and thumbs) back as normalised JSONL, the format <see cref="RankingImporter"/> reads:
/// one <c>{"labeler", "prompt_id", "ranks": {completion_id: rank | "F"}}</c> per ranking, then one
/// <c>{"labeler", "prompt_id", "completion_id", "thumb": "up" | "down"}</c> per thumb.
/// </summary>
public static class RankingFiles
{
    public static void Write(string path, IEnumerable<Ranking> rankings, IReadOnlyDictionary<string, CompletionSet> sets, bool overwrite = true) =>
        Write(path, rankings, [], sets, overwrite);

    public static void Write(
        string path, IEnumerable<Ranking> rankings, IEnumerable<ThumbFeedback> thumbs, IReadOnlyDictionary<string, CompletionSet> sets, bool overwrite = true) =>
        JsonLines.Write(path, rankings.Select(r => (object)r).Concat(thumbs), (w, record) =>
        {
            if (record is Ranking r) WriteRanking(w, r, sets[r.PromptId]);
            else WriteThumb(w, (ThumbFeedback)record);
        }, overwrite);

    private static void WriteRanking(Utf8JsonWriter w, Ranking r, CompletionSet set)
    {
        w.WriteStartObject();
        w.WriteString("labeler", r.Labeler);
        w.WriteString("prompt_id", r.PromptId);
        w.WriteStartObject("ranks");
        for (int i = 0; i < r.Ranks.Length; i++)
        {
            if (r.Ranks[i].IsFailed) w.WriteString(set.Completions[i].Id, "F");
            else w.WriteNumber(set.Completions[i].Id, r.Ranks[i].Value);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteThumb(Utf8JsonWriter w, ThumbFeedback t)
    {
        w.WriteStartObject();
        w.WriteString("labeler", t.Labeler);
        w.WriteString("prompt_id", t.PromptId);
        w.WriteString("completion_id", t.CompletionId);
        w.WriteString("thumb", t.Up ? "up" : "down");
        w.WriteEndObject();
    }
}
