using Rlhf.IO;

namespace Rlhf.Feedback;

/// <summary>Writes accepted rankings back as normalised JSONL (the format <see cref="RankingImporter"/> reads).</summary>
public static class RankingFiles
{
    public static void Write(string path, IEnumerable<Ranking> rankings, IReadOnlyDictionary<string, CompletionSet> sets, bool overwrite = true) =>
        JsonLines.Write(path, rankings, (w, r) =>
        {
            var set = sets[r.PromptId];
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
        }, overwrite);
}
