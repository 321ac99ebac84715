using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>The ILGPU kernels on ILGPU's CPU accelerator (small shapes) against the CPU span kernels.</summary>
[NonParallelizable]
public class VocabularyDeviceKernelsTests
{
    private KernelDevice device = null!;
    private VocabularyDeviceKernels kernels = null!;

    [OneTimeSetUp]
    public void Start()
    {
        device = KernelDevice.CreateCpu();
        kernels = new VocabularyDeviceKernels(device);
    }

    [OneTimeTearDown]
    public void Stop() => device.Dispose();

    private MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(T[] data)
        where T : unmanaged => device.Accelerator.Allocate1D(data);

    private MemoryBuffer1D<T, Stride1D.Dense> Zeros<T>(int n)
        where T : unmanaged
    {
        var buffer = device.Accelerator.Allocate1D<T>(n);
        buffer.MemSetToZero();
        return buffer;
    }

    private (float[] LogProbs, float[] Entropy, float[] Lse, int[] Status) DeviceForward(float[] logits, int[] tokens, int v, float temperature)
    {
        int n = tokens.Length;
        using var dLogits = Upload(logits);
        using var dTokens = Upload(tokens);
        using var dLogProbs = Zeros<float>(n);
        using var dEntropy = Zeros<float>(n);
        using var dLse = Zeros<float>(n);
        using var dStatus = Zeros<int>(n);
        kernels.TokenStatistics(dLogits.View, dTokens.View, v, temperature, dLogProbs.View, dEntropy.View, dLse.View, dStatus.View);
        kernels.Synchronize();
        return (dLogProbs.GetAsArray1D(), dEntropy.GetAsArray1D(), dLse.GetAsArray1D(), dStatus.GetAsArray1D());
    }

    [Test]
    public void TokenStatistics_MatchCpu([Values(1, 7, 17, 100)] int v, [Values(1f, 0.6f)] float temperature, [Values(0.0, 0.3)] double banned)
    {
        const int n = 5;
        var logits = Logits(n, v, seed: v + 1, bannedFraction: banned);
        KeepOneFinitePerRow(logits, v);
        logits[0] = 1e4f;
        var tokens = Tokens(logits, v, 2);
        var (logProbs, entropy, lse, status) = DeviceForward(logits, tokens, v, temperature);
        var expected = (LogProbs: new float[n], Entropy: new float[n], Lse: new float[n]);
        TokenStatistics.Compute(logits, tokens, v, temperature, expected.LogProbs, expected.Entropy, expected.Lse);
        Assert.That(status, Is.All.EqualTo(0));
        for (int i = 0; i < n; i++)
        {
            AssertClose(expected.LogProbs[i], logProbs[i], 1e-5, 1e-5, $"logProbs[{i}]");
            AssertClose(expected.Entropy[i], entropy[i], 1e-5, 1e-5, $"entropy[{i}]");
            AssertClose(expected.Lse[i], lse[i], 1e-5, 1e-5, $"logSumExp[{i}]");
        }
    }

    [Test]
    public void TokenStatistics_ReportBadRows()
    {
        const int v = 20, n = 4;
        var logits = Logits(n, v, seed: 3);
        logits[1 * v + 13] = float.NaN;
        logits[1 * v + 17] = float.PositiveInfinity;
        Array.Fill(logits, float.NegativeInfinity, 2 * v, v);
        var (_, _, _, status) = DeviceForward(logits, [0, 0, 0, v + 3], v, 1f);
        Assert.That(status[0], Is.EqualTo(0));
        Assert.That(status[1], Is.EqualTo(14), "first bad column + 1");
        var e = Assert.Throws<ArgumentException>(() => VocabularyDeviceKernels.ThrowIfInvalid(status))!;
        Assert.That(e.ParamName, Is.EqualTo("logits"));
        Assert.That(e.Message, Does.Contain("logits[1, 13]"));
        status[1] = 0;
        e = Assert.Throws<ArgumentException>(() => VocabularyDeviceKernels.ThrowIfInvalid(status))!;
        Assert.That(e.Message, Does.Contain("row 2"));
        status[2] = 0;
        var t = Assert.Throws<ArgumentOutOfRangeException>(() => VocabularyDeviceKernels.ThrowIfInvalid(status))!;
        Assert.That(t.Message, Does.Contain("tokens[3]"));
    }

    [Test]
    public void Backward_MatchesCpu([Values(7, 100)] int v, [Values(1f, 1.5f)] float temperature)
    {
        const int n = 4;
        var logits = Logits(n, v, seed: v, bannedFraction: 0.2);
        KeepOneFinitePerRow(logits, v);
        var tokens = Tokens(logits, v, 3);
        var logProbs = new float[n];
        var entropy = new float[n];
        var lse = new float[n];
        TokenStatistics.Compute(logits, tokens, v, temperature, logProbs, entropy, lse);
        float[] gLogp = [1f, -0.5f, 2f, 0.25f];
        float[] gEntropy = [0.3f, 1f, -0.7f, 0f];
        var expected = (float[])logits.Clone();
        TokenStatistics.Backward(expected, tokens, v, temperature, lse, entropy, gLogp, gEntropy);

        using var dLogits = Upload(logits);
        using var dTokens = Upload(tokens);
        using var dLse = Upload(lse);
        using var dEntropy = Upload(entropy);
        using var dGLogp = Upload(gLogp);
        using var dGEntropy = Upload(gEntropy);
        kernels.TokenStatisticsBackward(dLogits.View, dTokens.View, v, temperature, dLse.View, dEntropy.View, dGLogp.View, dGEntropy.View);
        kernels.Synchronize();
        var actual = dLogits.GetAsArray1D();
        for (int k = 0; k < actual.Length; k++)
        {
            if (float.IsNegativeInfinity(logits[k]) && k % v != tokens[k / v])
                Assert.That(actual[k], Is.EqualTo(0f));
            else
                AssertClose(expected[k], actual[k], 1e-5, 1e-7, $"dlogits[{k / v}, {k % v}]");
        }
    }

    [Test]
    public void FullVocabularyKl_MatchesCpu([Values(1, 17, 100)] int v, [Values(1f, 0.8f)] float temperature)
    {
        const int n = 5;
        var policy = Logits(n, v, seed: v + 7, bannedFraction: 0.2);
        KeepOneFinitePerRow(policy, v);
        var random = new Random(4);
        var reference = Array.ConvertAll(policy, x => x + (float)(random.NextDouble() - 0.5));
        if (v > 1) reference[2 * v + 1] = float.NegativeInfinity;
        var expected = new float[n];
        KullbackLeibler.FullVocabulary(policy, reference, v, temperature, expected);

        using var dPolicy = Upload(policy);
        using var dReference = Upload(reference);
        using var dKl = Zeros<float>(n);
        using var dStatus = Zeros<int>(n);
        kernels.FullVocabularyKl(dPolicy.View, dReference.View, v, temperature, dKl.View, dStatus.View);
        kernels.Synchronize();
        var kl = dKl.GetAsArray1D();
        Assert.That(dStatus.GetAsArray1D(), Is.All.EqualTo(0));
        for (int i = 0; i < n; i++) AssertClose(expected[i], kl[i], 1e-5, 1e-6, $"kl[{i}]");
    }

    [TestCase(-200f, 1f, false)] // the token's e^(x − max) underflows to 0 in its thread
    [TestCase(-6f, 0.05f, false)] // the same at a low temperature
    [TestCase(-200f, 1f, true)] // a whole thread's slice far below the row's maximum: its weight underflows in the merge
    public void FullVocabularyKl_ReferenceBanningAnAllowedTokenIsInfinite(float low, float temperature, bool wholeSlice)
    {
        // KL(p‖q) = +∞ when q bans a token p allows, however small p is there (CPU kernel and PyTorch agree).
        const int v = 100;
        var policy = new float[v];
        var reference = new float[v];
        if (wholeSlice)
        {
            for (int j = 3; j < v; j += 16) policy[j] = low;
        }

        policy[35] = low;
        reference[35] = float.NegativeInfinity;
        var expected = new float[1];
        KullbackLeibler.FullVocabulary(policy, reference, v, temperature, expected);
        Assert.That(expected[0], Is.EqualTo(float.PositiveInfinity), "CPU kernel");

        using var dPolicy = Upload(policy);
        using var dReference = Upload(reference);
        using var dKl = Zeros<float>(1);
        using var dStatus = Zeros<int>(1);
        kernels.FullVocabularyKl(dPolicy.View, dReference.View, v, temperature, dKl.View, dStatus.View);
        kernels.Synchronize();
        Assert.That(dStatus.GetAsArray1D()[0], Is.EqualTo(0));
        Assert.That(dKl.GetAsArray1D()[0], Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void FullVocabularyKl_ReportsBadReference()
    {
        const int v = 9;
        var policy = Logits(2, v, seed: 1);
        var reference = Logits(2, v, seed: 2);
        reference[v + 4] = float.NaN;
        using var dPolicy = Upload(policy);
        using var dReference = Upload(reference);
        using var dKl = Zeros<float>(2);
        using var dStatus = Zeros<int>(2);
        kernels.FullVocabularyKl(dPolicy.View, dReference.View, v, 1f, dKl.View, dStatus.View);
        kernels.Synchronize();
        var e = Assert.Throws<ArgumentException>(() => VocabularyDeviceKernels.ThrowIfInvalid(dStatus.GetAsArray1D(), pair: true))!;
        Assert.That(e.ParamName, Is.EqualTo("referenceLogits"));
        Assert.That(e.Message, Does.Contain("referenceLogits[1, 4]"));
    }

    [Test]
    public void SampledKl_MatchesCpu()
    {
        float[] logp = [-1f, -2.5f, -0.1f, -3f, -0.5f, -7f, -2f];
        float[] logq = [-1.2f, -2.5f, -0.1000001f, -1f, -0.5001f, -0.5f, -2.4f];
        int n = logp.Length;
        var expected = (K1: new float[n], K2: new float[n], K3: new float[n]);
        KullbackLeibler.K1(logp, logq, expected.K1);
        KullbackLeibler.K2(logp, logq, expected.K2);
        KullbackLeibler.K3(logp, logq, expected.K3);
        using var dLogp = Upload(logp);
        using var dLogq = Upload(logq);
        using var k1 = Zeros<float>(n);
        using var k2 = Zeros<float>(n);
        using var k3 = Zeros<float>(n);
        kernels.SampledKl(dLogp.View, dLogq.View, k1.View, k2.View, k3.View);
        kernels.Synchronize();
        var (a1, a2, a3) = (k1.GetAsArray1D(), k2.GetAsArray1D(), k3.GetAsArray1D());
        for (int i = 0; i < n; i++)
        {
            AssertClose(expected.K1[i], a1[i], 1e-6, 0, $"k1[{i}]");
            AssertClose(expected.K2[i], a2[i], 1e-6, 0, $"k2[{i}]");
            AssertClose(expected.K3[i], a3[i], 2e-6, 0, $"k3[{i}]");
        }
    }

    [Test]
    public void GroupSize_IsAPowerOfTwoWithinTheAcceleratorLimit()
    {
        Assert.That(kernels.GroupSize, Is.LessThanOrEqualTo(device.MaxGroupSize));
        Assert.That(kernels.GroupSize & (kernels.GroupSize - 1), Is.EqualTo(0));
    }
}
