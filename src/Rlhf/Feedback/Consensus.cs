namespace Rlhf.Feedback;

/// <summary>
/// The consensus of several labelers on one prompt: each completion's mean score, where a score is the rank
/// (1 = best) and a failed answer ("F") counts as n + 1 for n completions, so F sorts below every ranked
/// answer in each labeler's ranking before averaging. Lower mean = better; equal means are ties.
/// </summary>
public sealed record Consensus(string PromptId, double[] MeanScores, int Labelers)
{
    public static Consensus Of(string promptId, IReadOnlyList<Ranking> rankings)
    {
        if (rankings.Count == 0) throw new ArgumentException($"no rankings for prompt \"{promptId}\"", nameof(rankings));
        int n = rankings[0].Ranks.Length;
        var mean = new double[n];
        foreach (var ranking in rankings)
        {
            if (ranking.Ranks.Length != n)
            {
                throw new ArgumentException($"ranking from {ranking.Source} has {ranking.Ranks.Length} ranks, expected {n}", nameof(rankings));
            }

            var scores = ranking.Scores();
            for (int i = 0; i < n; i++) mean[i] += scores[i];
        }

        // Scores are whole numbers, so their sums are exact and equal sums give equal means: summing score/count
        // instead rounded differently in different labeler orders, and a tie became a preference.
        for (int i = 0; i < n; i++) mean[i] /= rankings.Count;
        return new Consensus(promptId, mean, rankings.Count);
    }

    /// <summary>Consensus per prompt over every accepted ranking, in first-seen prompt order.</summary>
    public static List<Consensus> PerPrompt(IEnumerable<Ranking> rankings) =>
        rankings.GroupBy(r => r.PromptId, StringComparer.Ordinal).Select(g => Of(g.Key, g.ToList())).ToList();
}
