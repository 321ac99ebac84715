namespace Rlhf.Cai;

/// <summary>
/// The arithmetic that turns option scores into soft preference labels: a two-way normalisation of the option
/// log-probabilities, and averaging over both orders of the options (cancelling a bias for a position or label).
/// </summary>
public static class OptionPreference
{
    /// <summary>
    /// Effectively computes log softmax(logits)[index] = logits[index] − logsumexp(logits), shifting by the max
    /// first (online max/sum in double). A NaN logit gives NaN; +Inf at another index gives −Inf.
    /// </summary>
    public static double LogSoftmaxAt(ReadOnlySpan<float> logits, int index)
    {
        if ((uint)index >= (uint)logits.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"index {index} is outside the {logits.Length} logits");
        double max = double.NegativeInfinity, sum = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double z = logits[i];
            if (double.IsNaN(z)) return double.NaN;
            if (z > max)
            {
                sum = sum * Math.Exp(max - z) + 1;
                max = z;
            }
            else
            {
                sum += Math.Exp(z - max);
            }
        }

        return logits[index] - (max + Math.Log(sum));
    }

    /// <summary>
    /// P(A) among the two options alone: exp(logA) / (exp(logA) + exp(logB)) = σ(logA − logB), computed without
    /// overflow. Two −∞ scores (neither option possible) give 0.5; a NaN gives NaN.
    /// </summary>
    public static double TwoWay(double logA, double logB)
    {
        if (double.IsNegativeInfinity(logA) && double.IsNegativeInfinity(logB)) return 0.5;
        double d = logA - logB;
        return d >= 0 ? 1 / (1 + Math.Exp(-d)) : Math.Exp(d) / (1 + Math.Exp(d));
    }

    /// <summary>
    /// P(the first reply is better) from two presentations: <paramref name="pFirstShownAsA"/> = P(A) when the first
    /// reply is option A, <paramref name="pSecondShownAsA"/> = P(A) when the second reply is option A. The mean of the
    /// two estimates of the same event: ½·(p₁ + (1 − p₂)). A constant pull towards "(A)" adds to p₁ and p₂ alike and
    /// cancels.
    /// </summary>
    public static double AverageOrders(double pFirstShownAsA, double pSecondShownAsA) => 0.5 * (pFirstShownAsA + (1 - pSecondShownAsA));
}
