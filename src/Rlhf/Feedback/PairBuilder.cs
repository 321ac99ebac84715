namespace Rlhf.Feedback;

/// <summary>
/// Turns rankings into pairwise comparisons: every one of the C(n,2) pairs (i &lt; j, in the order the
/// completions were shown) with the preferred completion first. Ties give no pair; F sorts below every
/// ranked answer, and two F answers give no pair.
/// </summary>
public static class PairBuilder
{
    public static List<PreferencePair> FromRanking(CompletionSet set, Ranking ranking)
    {
        if (ranking.PromptId != set.PromptId) throw new ArgumentException($"ranking is for prompt \"{ranking.PromptId}\", set is \"{set.PromptId}\"", nameof(ranking));
        return FromScores(set, ranking.Scores(), ranking.Labeler);
    }

    /// <summary>Pairs from the consensus mean scores (labeler "consensus").</summary>
    public static List<PreferencePair> FromConsensus(CompletionSet set, Consensus consensus) =>
        FromScores(set, consensus.MeanScores, "consensus");

    /// <summary>Up-rated completions preferred over down-rated ones of the same labeler and prompt (margin 1).</summary>
    public static List<PreferencePair> FromThumbs(IReadOnlyDictionary<string, CompletionSet> sets, IEnumerable<ThumbFeedback> thumbs)
    {
        var pairs = new List<PreferencePair>();
        foreach (var group in thumbs.GroupBy(t => (t.Labeler, t.PromptId)))
        {
            var set = sets[group.Key.PromptId];
            var scores = new double[set.Completions.Count];
            Array.Fill(scores, double.NaN);
            foreach (var t in group) scores[set.IndexOf(t.CompletionId)] = t.Up ? 1 : 2;
            pairs.AddRange(FromScores(set, scores, group.Key.Labeler));
        }

        return pairs;
    }

    /// <summary>All pairs from per-completion scores (lower = better; NaN = not rated).</summary>
    public static List<PreferencePair> FromScores(CompletionSet set, ReadOnlySpan<double> scores, string labeler)
    {
        int n = set.Completions.Count;
        if (scores.Length != n) throw new ArgumentException($"{scores.Length} scores for {n} completions", nameof(scores));
        int failed = n + 1;
        var pairs = new List<PreferencePair>();
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                double si = scores[i], sj = scores[j];
                if (double.IsNaN(si) || double.IsNaN(sj) || si == sj) continue;
                if (si == failed && sj == failed) continue;
                var (better, worse) = si < sj ? (i, j) : (j, i);
                pairs.Add(new PreferencePair(set.PromptId, set.Prompt,
                    set.Completions[better].Id, set.Completions[better].Text,
                    set.Completions[worse].Id, set.Completions[worse].Text,
                    labeler, Math.Abs(si - sj)));
            }
        }

        return pairs;
    }
}
