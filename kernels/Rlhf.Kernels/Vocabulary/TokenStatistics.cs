namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// Per-token statistics of a policy's next-token distribution softmax(logits / T): log-probability of the sampled
/// token, entropy and log-sum-exp, each row read once with an online max/sum (no [N, V] probability buffer),
/// and the fused gradient with respect to the logits (written over the logits, as llm.c's fused classifier).
/// Rows run in parallel on up to <see cref="KernelParallelism.MaxThreads"/> threads; results do not depend on it.
/// </summary>
public static unsafe partial class TokenStatistics
{
    /// <summary>
    /// logits [N, V], tokens [N] → logProbs, entropy, logSumExp [N]. Effectively computes, per row i with z = logits[i, :] / T:
    /// logSumExp[i] = log Σ_j exp(z_j); logProbs[i] = z[tokens[i]] − logSumExp[i]; entropy[i] = −Σ_j p_j log p_j with p = softmax(z).
    /// −∞ logits are banned tokens: probability 0, no entropy contribution (a sampled banned token gives logProbs = −∞).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths disagree; a token id is outside [0, V); temperature is not positive and finite;
    /// a logit is NaN or +∞; or a row is −∞ everywhere. The message names the argument, the row/index and the value.
    /// Outputs are unspecified after an exception.</exception>
    public static void Compute(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> tokens, int vocabularySize, float temperature,
        Span<float> logProbs, Span<float> entropy, Span<float> logSumExp)
    {
        VocabularyChecks.Length(entropy.Length, tokens.Length, nameof(entropy));
        Run<Enabled>(logits, tokens, vocabularySize, temperature, logProbs, entropy, logSumExp);
    }

    /// <summary>
    /// logits [N, V], tokens [N] → logProbs, logSumExp [N]: <see cref="Compute"/> without the entropy (the cheapest
    /// pass; the log-sum-exp is what <see cref="Backward"/> needs). Same ±∞/NaN rules and exceptions as <see cref="Compute"/>.
    /// </summary>
    public static void LogProbs(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> tokens, int vocabularySize, float temperature,
        Span<float> logProbs, Span<float> logSumExp)
    {
        Run<Disabled>(logits, tokens, vocabularySize, temperature, logProbs, default, logSumExp);
    }

    private static void Run<TEntropy>(
        ReadOnlySpan<float> logits, ReadOnlySpan<int> tokens, int vocabularySize, float temperature,
        Span<float> logProbs, Span<float> entropy, Span<float> logSumExp)
        where TEntropy : struct, IFlag
    {
        int rows = VocabularyChecks.Rows(logits.Length, vocabularySize, tokens.Length, nameof(logits));
        VocabularyChecks.Length(logProbs.Length, rows, nameof(logProbs));
        VocabularyChecks.Length(logSumExp.Length, rows, nameof(logSumExp));
        float invT = VocabularyChecks.InverseTemperature(temperature);
        VocabularyChecks.Tokens(tokens, vocabularySize);
        if (rows == 0) return;

        int firstBadRow = int.MaxValue;
        fixed (float* pLogits = logits)
        fixed (int* pTokens = tokens)
        fixed (float* pLogProbs = logProbs)
        fixed (float* pEntropy = entropy)
        fixed (float* pLse = logSumExp)
        {
            var body = new ForwardBody<TEntropy>
            {
                Logits = pLogits, Tokens = pTokens, LogProbs = pLogProbs, Entropy = pEntropy, LogSumExp = pLse,
                Vocabulary = vocabularySize, InvT = invT, FirstBadRow = &firstBadRow,
            };
            RowParallel.For(rows, vocabularySize, body);
        }

        if (firstBadRow != int.MaxValue)
            VocabularyChecks.ThrowIfInvalidRow(logits, vocabularySize, firstBadRow, nameof(logits));
    }

    private struct ForwardBody<TEntropy> : IRowBody
        where TEntropy : struct, IFlag
    {
        public float* Logits;
        public int* Tokens;
        public float* LogProbs;
        public float* Entropy;
        public float* LogSumExp;
        public int Vocabulary;
        public float InvT;
        public int* FirstBadRow;

        public readonly void Run(int startRow, int endRow)
        {
            for (int i = startRow; i < endRow; i++)
            {
                var row = new ReadOnlySpan<float>(Logits + (long)i * Vocabulary, Vocabulary);
                var moments = SoftmaxRowScan.Scan<TEntropy>(row, InvT);
                if (moments.Suspect && VocabularyChecks.FindInvalid(row) != -2)
                {
                    RowParallel.RecordBadRow(FirstBadRow, i);
                    return;
                }

                double shift = (double)moments.Max * InvT;
                LogSumExp[i] = (float)(shift + moments.LogSum);
                LogProbs[i] = (float)((double)row[Tokens[i]] * InvT - shift - moments.LogSum);
                if (TEntropy.On) Entropy[i] = (float)moments.Entropy;
            }
        }
    }
}
