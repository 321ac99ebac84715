using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

public class TokenStatisticsBackwardTests
{
    /// <summary>Forward, then backward in place; returns dLoss/dlogits for loss = Σ gLogp·logp + gH·H.</summary>
    private static float[] Gradient(float[] logits, int[] tokens, int v, float temperature, float[] gLogp, float[]? gEntropy)
    {
        int rows = tokens.Length;
        var logProbs = new float[rows];
        var entropy = new float[rows];
        var lse = new float[rows];
        TokenStatistics.Compute(logits, tokens, v, temperature, logProbs, entropy, lse);
        var grad = (float[])logits.Clone();
        TokenStatistics.Backward(grad, tokens, v, temperature, lse, gEntropy is null ? default : entropy, gLogp, gEntropy);
        return grad;
    }

    [Test]
    public void MatchesCentralFiniteDifferences(
        [Values(1, 7, 17, 100)] int v, [Values(1f, 0.6f, 1.7f)] float temperature, [Values(0.0, 0.3)] double bannedFraction)
    {
        const int rows = 3;
        var logits = Logits(rows, v, seed: v + 100, scale: 2.0, bannedFraction: bannedFraction);
        KeepOneFinitePerRow(logits, v);
        var tokens = Tokens(logits, v, 7);
        float[] gLogp = [1f, -0.5f, 2f];
        float[] gEntropy = [0.7f, 1.3f, -0.4f];
        var grad = Gradient(logits, tokens, v, temperature, gLogp, gEntropy);
        for (int i = 0; i < rows; i++)
        {
            var row = logits.AsSpan(i * v, v);
            var fd = VocabularyReference.FiniteDifferenceGradient(row, tokens[i], temperature, gLogp[i], gEntropy[i]);
            for (int j = 0; j < v; j++)
            {
                if (float.IsNegativeInfinity(row[j]))
                    Assert.That(grad[i * v + j], Is.EqualTo(0f), $"banned logit [{i}, {j}] must get exactly 0");
                else
                    AssertClose(fd[j], grad[i * v + j], 1e-4, 2e-6, $"dlogits[{i}, {j}]");
            }
        }
    }

    [Test]
    public void LogProbOnly_MatchesFiniteDifferences()
    {
        const int v = 33;
        var logits = Logits(2, v, seed: 4);
        var tokens = Tokens(logits, v, 5);
        float[] gLogp = [1f, -2f];
        var grad = Gradient(logits, tokens, v, 1.3f, gLogp, null);
        for (int i = 0; i < 2; i++)
        {
            var fd = VocabularyReference.FiniteDifferenceGradient(logits.AsSpan(i * v, v), tokens[i], 1.3, gLogp[i], 0);
            for (int j = 0; j < v; j++) AssertClose(fd[j], grad[i * v + j], 1e-4, 2e-6, $"dlogits[{i}, {j}]");
        }
    }

    [Test]
    public void HugeLogits_GradientsStayFinite()
    {
        // p at ±1e4 logits comes from the float log-sum-exp (ulp 1e−3 there), so compare with a matching tolerance.
        const int v = 40;
        var logits = Logits(2, v, seed: 6, scale: 1e4);
        logits[3] = 1e4f;
        logits[4] = 1e4f - 0.5f;
        logits[v + 9] = -1e4f + 2f;
        logits[v + 10] = -1e4f + 1f;
        for (int j = 11; j < v; j++) logits[v + j] = MathF.Min(logits[v + j], -1e4f);
        int[] tokens = [4, 10];
        float[] gLogp = [1f, 1f];
        float[] gEntropy = [0.5f, 0.5f];
        var grad = Gradient(logits, tokens, v, 1f, gLogp, gEntropy);
        for (int i = 0; i < 2; i++)
        {
            var fd = VocabularyReference.FiniteDifferenceGradient(logits.AsSpan(i * v, v), tokens[i], 1.0, gLogp[i], gEntropy[i], step: 1e-3);
            for (int j = 0; j < v; j++) AssertClose(fd[j], grad[i * v + j], 2e-3, 2e-4, $"dlogits[{i}, {j}]");
        }
    }

    [Test]
    public void GradientRowsSumToZero()
    {
        // Shifting a row's logits changes nothing, so its gradient sums to 0.
        const int v = 1000;
        var logits = Logits(4, v, seed: 12);
        var grad = Gradient(logits, Tokens(logits, v, 3), v, 0.8f, [1f, 2f, -1f, 0.5f], [0.3f, -0.2f, 1f, 0f]);
        for (int i = 0; i < 4; i++)
        {
            double sum = 0;
            for (int j = 0; j < v; j++) sum += grad[i * v + j];
            Assert.That(sum, Is.EqualTo(0).Within(1e-5), $"row {i}");
        }
    }

    [TestCase(7)] // the short-row path
    [TestCase(32)]
    [TestCase(1000)] // the aligned loop with its head and tail
    public void NaNLogSumExp_PropagatesIntoItsRowOnly(int v)
    {
        var logits = new float[2 * v];
        for (int j = 0; j < v; j++) logits[j] = logits[v + j] = 0.1f * j;
        double sum = 0;
        for (int j = 0; j < v; j++) sum += Math.Exp(logits[j]);
        float[] lse = [float.NaN, (float)Math.Log(sum)];
        TokenStatistics.Backward(logits, [1, 1], v, 1f, lse, [1f, 1f], [1f, 1f], [0.5f, 0.5f]);
        for (int j = 0; j < v; j++)
        {
            Assert.That(float.IsNaN(logits[j]), Is.True, $"dlogits[0, {j}] = {logits[j]}");
            Assert.That(float.IsFinite(logits[v + j]), Is.True, $"dlogits[1, {j}] = {logits[v + j]}");
        }
    }
}
