using System.Runtime.Intrinsics;
using Rlhf.Kernels;
using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

public class TokenStatisticsTests
{
    private static void CheckAgainstReference(float[] logits, int[] tokens, int vocabularySize, float temperature, double relative, double absolute)
    {
        int rows = tokens.Length;
        var logProbs = new float[rows];
        var entropy = new float[rows];
        var lse = new float[rows];
        TokenStatistics.Compute(logits, tokens, vocabularySize, temperature, logProbs, entropy, lse);
        var onlyLogProbs = new float[rows];
        var onlyLse = new float[rows];
        TokenStatistics.LogProbs(logits, tokens, vocabularySize, temperature, onlyLogProbs, onlyLse);
        for (int i = 0; i < rows; i++)
        {
            var expected = VocabularyReference.Row(logits.AsSpan(i * vocabularySize, vocabularySize), tokens[i], temperature);
            AssertClose(expected.LogProb, logProbs[i], relative, absolute, $"logProbs[{i}]");
            AssertClose(expected.Entropy, entropy[i], relative, absolute, $"entropy[{i}]");
            AssertClose(expected.LogSumExp, lse[i], relative, absolute, $"logSumExp[{i}]");
        }

        // The entropy-free pass runs the same arithmetic for the shared outputs: same bits.
        Assert.That(onlyLogProbs, Is.EqualTo(logProbs));
        Assert.That(onlyLse, Is.EqualTo(lse));
    }

    [Test]
    public void MatchesReference_RandomRows(
        [Values(1, 7, 16, 17, 33, 64, 100, 1000)] int vocabularySize,
        [Values(1f, 0.7f, 2.5f)] float temperature)
    {
        var logits = Logits(5, vocabularySize, seed: vocabularySize);
        CheckAgainstReference(logits, Tokens(logits, vocabularySize, 1), vocabularySize, temperature, 2e-6, 2e-6);
    }

    [Test]
    public void MatchesReference_BannedTokens([Values(7, 33, 1000)] int vocabularySize, [Values(1f, 0.5f)] float temperature)
    {
        var logits = Logits(6, vocabularySize, seed: 3, bannedFraction: 0.4);
        KeepOneFinitePerRow(logits, vocabularySize);
        CheckAgainstReference(logits, Tokens(logits, vocabularySize, 2), vocabularySize, temperature, 2e-6, 2e-6);
    }

    [Test]
    public void MatchesReference_HugeLogits([Values(17, 1000)] int vocabularySize, [Values(1f, 0.3f)] float temperature)
    {
        // ±1e4 logits: exp of an unshifted logit would overflow; the online max keeps every exponent ≤ 0.
        var logits = Logits(4, vocabularySize, seed: 5, scale: 1e4);
        var random = new Random(9);
        for (int i = 0; i < logits.Length; i++)
        {
            if (random.NextDouble() < 0.3) logits[i] = 1e4f - (float)random.NextDouble() * 4;
        }

        CheckAgainstReference(logits, Tokens(logits, vocabularySize, 3), vocabularySize, temperature, 2e-6, 2e-5);
    }

    [Test]
    public void OneTokenVocabulary_IsCertain()
    {
        float[] logits = [3f, -2f, 1e4f];
        var logProbs = new float[3];
        var entropy = new float[3];
        var lse = new float[3];
        TokenStatistics.Compute(logits, [0, 0, 0], 1, 2f, logProbs, entropy, lse);
        Assert.That(logProbs, Is.EqualTo(new[] { 0f, 0f, 0f }));
        Assert.That(entropy, Is.EqualTo(new[] { 0f, 0f, 0f }));
        Assert.That(lse, Is.EqualTo(new[] { 1.5f, -1f, 5000f }));
    }

    [Test]
    public void UniformRow_HasEntropyLogV()
    {
        const int v = 50257;
        var logits = new float[v];
        Array.Fill(logits, 0.25f);
        var logProbs = new float[1];
        var entropy = new float[1];
        var lse = new float[1];
        TokenStatistics.Compute(logits, [123], v, 1f, logProbs, entropy, lse);
        Assert.That(entropy[0], Is.EqualTo(Math.Log(v)).Within(1e-5 * Math.Log(v)));
        Assert.That(logProbs[0], Is.EqualTo(-Math.Log(v)).Within(1e-5 * Math.Log(v)));
    }

    [Test]
    public void ResultsDoNotDependOnThreadCount()
    {
        // 640K logits: enough for RowParallel to use both threads (it wants ≥ 256K per thread).
        const int rows = 128, v = 5000;
        var logits = Logits(rows, v, seed: 11);
        var tokens = Tokens(logits, v, 4);
        var reference = Logits(rows, v, seed: 12);
        float[] Run(int threads)
        {
            int saved = KernelParallelism.MaxThreads;
            KernelParallelism.MaxThreads = threads;
            try
            {
                var outputs = new float[4 * rows + rows * v];
                var logProbs = outputs.AsSpan(0, rows);
                var entropy = outputs.AsSpan(rows, rows);
                var lse = outputs.AsSpan(2 * rows, rows);
                var kl = outputs.AsSpan(3 * rows, rows);
                TokenStatistics.Compute(logits, tokens, v, 0.9f, logProbs, entropy, lse);
                KullbackLeibler.FullVocabulary(logits, reference, v, 0.9f, kl);
                var grad = outputs.AsSpan(4 * rows);
                logits.CopyTo(grad);
                TokenStatistics.Backward(grad, tokens, v, 0.9f, lse, entropy, logProbs, entropy);
                return outputs;
            }
            finally
            {
                KernelParallelism.MaxThreads = saved;
            }
        }

        Assert.That(Run(2), Is.EqualTo(Run(1)));
    }

    [Test]
    public void FastExp_IsWithin2e7RelativeAbove16And4e7Below()
    {
        // Below x = −16 a term is under e^−16 of its row's largest, so its error (from the |n|-proportional
        // reduction error) cannot show in a sum; the kernels' 2e−6 tests check that end to end.
        double worst = 0, worstFar = 0;
        Span<float> lanes = stackalloc float[16];
        for (double x = FastExp.MinArgument; x <= 1.0; x += 16 * 0.000737)
        {
            for (int l = 0; l < 16; l++) lanes[l] = (float)(x + l * 0.000737);
            var result = FastExp.Exp(Vector512.Create((ReadOnlySpan<float>)lanes));
            for (int l = 0; l < 16; l++)
            {
                double exact = Math.Exp(lanes[l]);
                double error = Math.Abs(result[l] - exact) / exact;
                if (lanes[l] >= -16f) worst = Math.Max(worst, error);
                else worstFar = Math.Max(worstFar, error);
            }
        }

        Assert.That(worst, Is.LessThan(2e-7));
        Assert.That(worstFar, Is.LessThan(4e-7));
        var special = FastExp.Exp(Vector512.Create(0f).WithElement(1, float.NaN));
        Assert.That(special[0], Is.EqualTo(1f));
        Assert.That(float.IsNaN(special[1]), Is.True);
    }
}
