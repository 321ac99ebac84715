using Rlhf.Kernels;
using Rlhf.Kernels.Vocabulary;
using Rlhf.Tests.Support;

namespace Rlhf.Tests.Kernels.Vocabulary;

public class TokenStatisticsValidationTests
{
    private const int V = 37;

    private static ArgumentException Forward(float[] logits, int[] tokens, float temperature = 1f, int outputs = -1)
    {
        int n = outputs < 0 ? tokens.Length : outputs;
        return Assert.Throws(Is.InstanceOf<ArgumentException>(),
            () => TokenStatistics.Compute(logits, tokens, V, temperature, new float[n], new float[n], new float[n])) as ArgumentException
            ?? throw new AssertionException("no ArgumentException");
    }

    private static float[] Good(int rows) => VocabularyTestData.Logits(rows, V, seed: 1);

    [Test]
    public void NaNLogit_NamesRowIndexAndValue([Values(1, 2)] int threads)
    {
        int saved = KernelParallelism.MaxThreads;
        KernelParallelism.MaxThreads = threads;
        try
        {
            // 600K logits: big enough to run on two threads (≥ 256K each); the lowest bad row is reported whichever
            // thread finds it, even when the second thread reaches its own bad row first.
            const int rows = 16384;
            var logits = VocabularyTestData.Logits(rows, V, seed: 2);
            logits[9000 * V + 5] = float.NaN;
            logits[3 * V + 17] = float.NaN;
            var e = Assert.Throws<ArgumentException>(() =>
                TokenStatistics.Compute(logits, new int[rows], V, 1f, new float[rows], new float[rows], new float[rows]))!;
            Assert.That(e.ParamName, Is.EqualTo("logits"));
            Assert.That(e.Message, Does.Contain("logits[3, 17]").And.Contain("NaN"));
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }
    }

    [Test]
    public void NaN_IsFoundOnTheBlockAndTailPaths(
        [Values(0, 15, 64, 700, 999)] int column, [Values(1f, 0.5f)] float temperature, [Values(true, false)] bool withEntropy)
    {
        const int v = 1000;
        var logits = VocabularyTestData.Logits(2, v, seed: 4);
        logits[v + column] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() =>
        {
            if (withEntropy) TokenStatistics.Compute(logits, [0, 0], v, temperature, new float[2], new float[2], new float[2]);
            else TokenStatistics.LogProbs(logits, [0, 0], v, temperature, new float[2], new float[2]);
        })!;
        Assert.That(e.Message, Does.Contain($"logits[1, {column}]").And.Contain("NaN"));
    }

    [TestCase(64, 0, 1f, float.NegativeInfinity)] // the NaN's lane holds only −∞ besides it: its weight underflows to 0
    [TestCase(32, 16, 1f, float.NegativeInfinity)] // the same on the tail path
    [TestCase(64, 0, 0.01f, -10f)] // finite logits: the lane sits 1000·T below the row's maximum
    public void NaN_InALaneFarBelowTheRowMaximum_IsFound(int v, int column, float temperature, float laneRest)
    {
        // Each of the 16 lanes keeps its own maximum and sums; a lane whose maximum is negligible against the row's
        // adds nothing to the row's sum, and its NaN must still flag the row.
        var logits = new float[v];
        for (int j = column % 16; j < v; j += 16) logits[j] = laneRest;
        logits[column] = float.NaN;
        foreach (bool withEntropy in new[] { true, false })
        {
            var e = Assert.Throws<ArgumentException>(() =>
            {
                if (withEntropy) TokenStatistics.Compute(logits, [5], v, temperature, new float[1], new float[1], new float[1]);
                else TokenStatistics.LogProbs(logits, [5], v, temperature, new float[1], new float[1]);
            }, $"entropy {withEntropy}")!;
            Assert.That(e.Message, Does.Contain($"logits[0, {column}]").And.Contain("NaN"));
        }
    }

    [Test]
    public void PositiveInfinity_IsRejected()
    {
        var logits = Good(3);
        logits[2 * V + 36] = float.PositiveInfinity;
        var e = Forward(logits, [0, 0, 0]);
        Assert.That(e.Message, Does.Contain("logits[2, 36]").And.Contain("Infinity"));
    }

    [Test]
    public void AllBannedRow_IsRejected()
    {
        var logits = Good(3);
        Array.Fill(logits, float.NegativeInfinity, V, V);
        var e = Forward(logits, [0, 0, 0]);
        Assert.That(e.ParamName, Is.EqualTo("logits"));
        Assert.That(e.Message, Does.Contain("row 1").And.Contain("-Infinity"));
    }

    [Test]
    public void TokenOutOfRange_NamesIndexAndValue([Values(-1, V, 1000)] int bad)
    {
        var e = Forward(Good(3), [0, bad, 2]);
        Assert.That(e.ParamName, Is.EqualTo("tokens"));
        Assert.That(e.Message, Does.Contain("tokens[1]").And.Contain(bad.ToString()));
    }

    [Test]
    public void BadTemperature_IsRejected([Values(0f, -1f, float.NaN, float.PositiveInfinity, 1e-40f)] float temperature)
    {
        var e = Forward(Good(2), [0, 0], temperature);
        Assert.That(e.ParamName, Is.EqualTo("temperature"));
        Assert.That(e.Message, Does.Contain(temperature.ToString()));
    }

    [Test]
    public void MismatchedLengths_AreRejected()
    {
        Assert.That(Forward(Good(3), [0, 0]).ParamName, Is.EqualTo("logits"));
        Assert.That(Forward(Good(2), [0, 0], outputs: 3).ParamName, Is.EqualTo("entropy"));
        var e = Assert.Throws<ArgumentException>(() =>
            TokenStatistics.LogProbs(Good(2), [0, 0], V, 1f, new float[2], new float[1]))!;
        Assert.That(e.ParamName, Is.EqualTo("logSumExp"));
        var b = Assert.Throws<ArgumentException>(() =>
            TokenStatistics.Backward(Good(2), [0, 0], V, 1f, new float[2], new float[2], new float[2], new float[3]))!;
        Assert.That(b.ParamName, Is.EqualTo("gradEntropy"));
        var t = Assert.Throws<ArgumentOutOfRangeException>(() =>
            TokenStatistics.Backward(Good(2), [0, 99], V, 1f, new float[2], default, new float[2], default))!;
        Assert.That(t.Message, Does.Contain("tokens[1]").And.Contain("99"));
    }

    [Test]
    public void SteadyStateCalls_DoNotAllocate()
    {
        const int rows = 64, v = 5000;
        var logits = VocabularyTestData.Logits(rows, v, seed: 8);
        var reference = VocabularyTestData.Logits(rows, v, seed: 9);
        var tokens = VocabularyTestData.Tokens(logits, v, 1);
        var a = new float[rows];
        var b = new float[rows];
        var c = new float[rows];
        var g = new float[rows];
        int saved = KernelParallelism.MaxThreads;
        KernelParallelism.MaxThreads = 1;
        try
        {
            void All()
            {
                TokenStatistics.Compute(logits, tokens, v, 0.8f, a, b, c);
                TokenStatistics.LogProbs(logits, tokens, v, 0.8f, a, c);
                KullbackLeibler.FullVocabulary(logits, reference, v, 0.8f, g);
                KullbackLeibler.K3(a, c, g);
                TokenStatistics.Backward(logits, tokens, v, 0.8f, c, b, a, b);
            }

            Assert.That(Allocations.PerCall(All), Is.EqualTo(0));
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }
    }
}
