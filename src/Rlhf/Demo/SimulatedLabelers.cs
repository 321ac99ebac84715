using Rlhf.Feedback;

namespace Rlhf.Demo;

/// <summary>
/// A rule-based judge of politeness and helpfulness built on <see cref="CustomerReplyCorpus"/>'s word lists: +1 per
/// polite phrase, +2 per helpful action, −3 per rude phrase, −2 for a reply with no known phrase at all (gibberish).
/// </summary>
public static class ReplyJudge
{
    private static readonly string[] Rude = [.. CustomerReplyCorpus.RudePhrases];
    private static readonly string[] Polite = [.. CustomerReplyCorpus.PolitePhrases];
    private static readonly string[] Helpful = [.. CustomerReplyCorpus.HelpfulPhrases];

    /// <summary>Higher is better.</summary>
    public static double Score(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        int rude = Count(reply, Rude), polite = Count(reply, Polite), helpful = Count(reply, Helpful);
        double s = polite + 2.0 * helpful - 3.0 * rude;
        return rude + polite + helpful == 0 ? -2 : s;
    }

    private static int Count(string text, string[] phrases)
    {
        int n = 0;
        foreach (var p in phrases)
        {
            int at = 0;
            while ((at = text.IndexOf(p, at, StringComparison.OrdinalIgnoreCase)) >= 0)
            {
                n++;
                at += p.Length;
            }
        }

        return n;
    }
}

/// <summary>
/// Three simulated labelers who rank each prompt's completions with <see cref="ReplyJudge"/>: "ada" and "ben" are
/// careful (equal judgements get equal ranks, which give no pair); "cy" is noisy: with probability <c>noisyRate</c> a
/// ranking is a random shuffle.
/// </summary>
public static class SimulatedLabelers
{
    public static readonly string[] Names = ["ada", "ben", "cy"];

    public const string NoisyLabeler = "cy";

    public static List<Ranking> Rank(IReadOnlyList<CompletionSet> sets, double noisyRate, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(sets);
        var rng = new SplitMix64(seed ^ 0x1ABE1E75UL);
        var rankings = new List<Ranking>();
        foreach (var set in sets)
        {
            int n = set.Completions.Count;
            var judged = new double[n];
            for (int i = 0; i < n; i++) judged[i] = ReplyJudge.Score(set.Completions[i].Text);
            foreach (var name in Names)
            {
                bool random = name == NoisyLabeler && rng.NextDouble() < noisyRate;
                var ranks = new Rank[n];
                if (random)
                {
                    var keys = new double[n];
                    var order = new int[n];
                    for (int i = 0; i < n; i++)
                    {
                        keys[i] = rng.NextDouble();
                        order[i] = i;
                    }

                    Array.Sort(keys, order);
                    for (int r = 0; r < n; r++) ranks[order[r]] = Feedback.Rank.Of(r + 1);
                }
                else
                {
                    for (int i = 0; i < n; i++)
                    {
                        int better = 0;
                        for (int j = 0; j < n; j++) better += judged[j] > judged[i] ? 1 : 0;
                        ranks[i] = Feedback.Rank.Of(better + 1);
                    }
                }
                rankings.Add(new Ranking(name, set.PromptId, ranks, "demo"));
            }
        }

        return rankings;
    }
}
