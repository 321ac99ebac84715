namespace Rlhf.Feedback;

/// <summary>Kendall's rank correlation with the tie correction (tau-b).</summary>
public static class KendallTauB
{
    /// <summary>
    /// Effectively computes (C − D) / sqrt((P − Tx)(P − Ty)) over all P = n(n−1)/2 pairs, where C and D count
    /// concordant and discordant pairs and Tx, Ty the pairs tied in x and in y. Lower scores are better ranks,
    /// but the sign convention does not matter as long as both sides use the same one. Returns NaN when either
    /// side is entirely tied (the statistic is undefined) or n &lt; 2.
    /// </summary>
    public static double Compute(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"x has {x.Length} values but y has {y.Length}", nameof(y));
        long concordant = 0, discordant = 0, tiedX = 0, tiedY = 0, pairs = 0;
        for (int i = 0; i < x.Length; i++)
        {
            for (int j = i + 1; j < x.Length; j++)
            {
                pairs++;
                int sx = Math.Sign(x[i] - x[j]), sy = Math.Sign(y[i] - y[j]);
                if (sx == 0) tiedX++;
                if (sy == 0) tiedY++;
                if (sx == 0 || sy == 0) continue;
                if (sx == sy) concordant++;
                else discordant++;
            }
        }

        double denominator = Math.Sqrt((double)(pairs - tiedX) * (pairs - tiedY));
        return denominator == 0 ? double.NaN : (concordant - discordant) / denominator;
    }
}
