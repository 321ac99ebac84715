namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// KL divergence between a policy and a frozen reference, per token: exactly over the full vocabulary from both
/// models' logits, or estimated from the sampled token's log-probabilities (Schulman's k1, k2, k3, as in TRL).
/// </summary>
public static unsafe class KullbackLeibler
{
    /// <summary>
    /// policyLogits, referenceLogits [N, V] → kl [N]. Effectively computes, per row with p = softmax(x/T), q = softmax(y/T):
    /// kl[i] = Σ_j p_j (log p_j − log q_j). −∞ logits are banned tokens: one the policy bans adds 0; one only the reference
    /// bans (p_j &gt; 0, q_j = 0) makes kl[i] = +∞. Both rows are read once, in parallel over rows.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths disagree; temperature is not positive and finite; a logit is NaN or +∞;
    /// or a row is −∞ everywhere. The message names the argument, the row/index and the value.</exception>
    public static void FullVocabulary(
        ReadOnlySpan<float> policyLogits, ReadOnlySpan<float> referenceLogits, int vocabularySize, float temperature, Span<float> kl)
    {
        int rows = VocabularyChecks.Rows(policyLogits.Length, vocabularySize, kl.Length, nameof(policyLogits));
        VocabularyChecks.Rows(referenceLogits.Length, vocabularySize, kl.Length, nameof(referenceLogits));
        float invT = VocabularyChecks.InverseTemperature(temperature);
        if (rows == 0) return;

        int firstBadRow = int.MaxValue;
        fixed (float* pPolicy = policyLogits)
        fixed (float* pReference = referenceLogits)
        fixed (float* pKl = kl)
        {
            var body = new FullBody
            {
                Policy = pPolicy, Reference = pReference, Kl = pKl, Vocabulary = vocabularySize, InvT = invT, FirstBadRow = &firstBadRow,
            };
            RowParallel.For(rows, 2L * vocabularySize, body);
        }

        if (firstBadRow != int.MaxValue
            && !VocabularyChecks.ThrowIfInvalidRow(policyLogits, vocabularySize, firstBadRow, nameof(policyLogits)))
            VocabularyChecks.ThrowIfInvalidRow(referenceLogits, vocabularySize, firstBadRow, nameof(referenceLogits));
    }

    private struct FullBody : IRowBody
    {
        public float* Policy;
        public float* Reference;
        public float* Kl;
        public int Vocabulary;
        public float InvT;
        public int* FirstBadRow;

        public readonly void Run(int startRow, int endRow)
        {
            for (int i = startRow; i < endRow; i++)
            {
                var x = new ReadOnlySpan<float>(Policy + (long)i * Vocabulary, Vocabulary);
                var y = new ReadOnlySpan<float>(Reference + (long)i * Vocabulary, Vocabulary);
                var result = KullbackLeiblerRowScan.Scan(x, y, InvT);
                if (result.Suspect && (VocabularyChecks.FindInvalid(x) != -2 || VocabularyChecks.FindInvalid(y) != -2))
                {
                    RowParallel.RecordBadRow(FirstBadRow, i);
                    return;
                }

                // Rounding can leave an exact 0 slightly negative; KL ≥ 0 by Gibbs' inequality.
                Kl[i] = (float)Math.Max(result.Kl, 0.0);
            }
        }
    }

    /// <summary>
    /// k1[i] = logProbs[i] − referenceLogProbs[i] (unbiased, can be negative). IEEE rules for ±∞ and NaN.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths differ.</exception>
    public static void K1(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        CheckLengths(logProbs, referenceLogProbs, destination);
        System.Numerics.Tensors.TensorPrimitives.Subtract(logProbs, referenceLogProbs, destination);
    }

    /// <summary>
    /// k2[i] = ½·(log r)² with log r = referenceLogProbs[i] − logProbs[i] (biased, ≥ 0). IEEE rules for ±∞ and NaN.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths differ.</exception>
    public static void K2(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        CheckLengths(logProbs, referenceLogProbs, destination);
        for (int i = 0; i < destination.Length; i++)
        {
            float logRatio = referenceLogProbs[i] - logProbs[i];
            destination[i] = 0.5f * logRatio * logRatio;
        }
    }

    /// <summary>
    /// k3[i] = (r − 1) − log r with r = exp(referenceLogProbs[i] − logProbs[i]) (unbiased, ≥ 0). Evaluated in double: in
    /// float, e^u − 1 − u loses every digit for the small |u| typical of PPO. IEEE rules for NaN; r = 0 gives +∞.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths differ.</exception>
    public static void K3(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        CheckLengths(logProbs, referenceLogProbs, destination);
        for (int i = 0; i < destination.Length; i++)
        {
            double u = (double)referenceLogProbs[i] - logProbs[i];
            destination[i] = (float)(Math.Abs(u) < 1e-3 ? u * u * (0.5 + u * (1.0 / 6 + u * (1.0 / 24 + u / 120))) : Math.Exp(u) - 1 - u);
        }
    }

    private static void CheckLengths(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        if (referenceLogProbs.Length != logProbs.Length)
            throw new ArgumentException(
                $"referenceLogProbs has {referenceLogProbs.Length} elements, logProbs has {logProbs.Length}.", nameof(referenceLogProbs));
        if (destination.Length != logProbs.Length)
            throw new ArgumentException($"destination has {destination.Length} elements, logProbs has {logProbs.Length}.", nameof(destination));
    }
}
