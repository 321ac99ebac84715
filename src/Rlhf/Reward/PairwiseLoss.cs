namespace Rlhf.Reward;

/// <summary>
/// The reward model's pairwise (Bradley–Terry) loss over a batch of comparisons, with optional margins and
/// soft labels (RLAIF preferences are probabilities, not certainties).
/// </summary>
public static class PairwiseLoss
{
    /// <summary>
    /// Effectively computes, per pair i with Δ = chosen[i] − rejected[i] − margin[i] and label p = preference[i]:
    /// loss_i = −[p·log σ(Δ) + (1 − p)·log σ(−Δ)], and returns the mean over pairs. With p = 1 and no margin it
    /// is TRL's −log σ(r_chosen − r_rejected). Writes d mean-loss / d chosen into <paramref name="gradChosen"/>
    /// ((σ(Δ) − p)/n) and its negation into <paramref name="gradRejected"/>. log σ is evaluated as −softplus(−x),
    /// so large |Δ| neither overflows nor loses the gradient. NaN rewards give a NaN loss.
    /// </summary>
    /// <param name="margins">Optional; empty means 0 for every pair.</param>
    /// <param name="preferences">Optional; empty means 1 (chosen is certainly better) for every pair.</param>
    /// <returns>The mean loss and the fraction of pairs where the chosen reward is higher (pairwise accuracy).</returns>
    public static (double Loss, double Accuracy) Compute(
        ReadOnlySpan<float> chosen, ReadOnlySpan<float> rejected, ReadOnlySpan<float> margins, ReadOnlySpan<float> preferences,
        Span<float> gradChosen, Span<float> gradRejected)
    {
        int n = chosen.Length;
        if (n == 0) throw new ArgumentException("no pairs", nameof(chosen));
        Check(rejected.Length, n, nameof(rejected));
        Check(gradChosen.Length, n, nameof(gradChosen));
        Check(gradRejected.Length, n, nameof(gradRejected));
        if (!margins.IsEmpty) Check(margins.Length, n, nameof(margins));
        if (!preferences.IsEmpty) Check(preferences.Length, n, nameof(preferences));

        double loss = 0;
        int correct = 0;
        for (int i = 0; i < n; i++)
        {
            float p = preferences.IsEmpty ? 1f : preferences[i];
            if (!(p >= 0f && p <= 1f))
            {
                throw new ArgumentOutOfRangeException(nameof(preferences), p, $"preferences[{i}] = {p} is outside [0, 1]");
            }

            double delta = (double)chosen[i] - rejected[i] - (margins.IsEmpty ? 0 : margins[i]);
            loss += p * Softplus(-delta) + (1 - p) * Softplus(delta);
            double g = (Sigmoid(delta) - p) / n;
            gradChosen[i] = (float)g;
            gradRejected[i] = (float)-g;
            if (chosen[i] > rejected[i]) correct++;
        }

        return (loss / n, (double)correct / n);
    }

    /// <summary>log(1 + e^x) without overflow.</summary>
    internal static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));

    internal static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    private static void Check(int length, int expected, string name)
    {
        if (length != expected) throw new ArgumentException($"{name} has {length} elements, expected {expected} (one per pair)", name);
    }
}
