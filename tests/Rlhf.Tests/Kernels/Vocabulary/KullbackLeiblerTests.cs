using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

public class KullbackLeiblerTests
{
    private static float[] Run(float[] policy, float[] reference, int v, float temperature)
    {
        var kl = new float[policy.Length / v];
        KullbackLeibler.FullVocabulary(policy, reference, v, temperature, kl);
        return kl;
    }

    private static void Check(float[] policy, float[] reference, int v, float temperature, double relative, double absolute)
    {
        var kl = Run(policy, reference, v, temperature);
        for (int i = 0; i < kl.Length; i++)
        {
            double expected = VocabularyReference.Kl(policy.AsSpan(i * v, v), reference.AsSpan(i * v, v), temperature);
            AssertClose(expected, kl[i], relative, absolute, $"kl[{i}]");
        }
    }

    /// <summary>A reference model near the policy: the policy's logits plus noise of the given size.</summary>
    private static float[] Near(float[] policy, double noise, double shift, int seed)
    {
        var random = new Random(seed);
        return Array.ConvertAll(policy, x => x + (float)(shift + noise * (random.NextDouble() * 2 - 1)));
    }

    [Test]
    public void MatchesReference([Values(1, 7, 17, 33, 1000)] int v, [Values(1f, 0.7f, 2f)] float temperature, [Values(0.05, 1.0)] double noise)
    {
        var policy = Logits(4, v, seed: v);
        Check(policy, Near(policy, noise, 0, seed: 3), v, temperature, 1e-5, 1e-7);
    }

    [Test]
    public void ConstantShiftBetweenModels_CostsAtMostHalfAnUlpOfTheShift([Values(33, 1000)] int v)
    {
        // x − y rounds to the float grid of the shift (ulp(300) = 2^−15), so the KL error is bounded by half of it.
        var policy = Logits(3, v, seed: 5, scale: 5);
        Check(policy, Near(policy, 0.01, shift: 300, seed: 6), v, 1f, 1e-5, Math.ScaleB(1, -16));
    }

    [Test]
    public void HugeLogits([Values(17, 1000)] int v)
    {
        var policy = Logits(3, v, seed: 8, scale: 1e4);
        Check(policy, Near(policy, 3, 0, seed: 9), v, 1f, 1e-5, 1e-6);
    }

    [Test]
    public void BannedInBoth_ContributeZero([Values(7, 1000)] int v)
    {
        var policy = Logits(4, v, seed: 10, bannedFraction: 0.3);
        KeepOneFinitePerRow(policy, v);
        var reference = Near(policy, 0.5, 0, seed: 11);
        Check(policy, reference, v, 0.9f, 1e-5, 1e-7);
    }

    [Test]
    public void BannedByPolicyOnly_ContributesZero([Values(50, 1000)] int v)
    {
        var policy = Logits(2, v, seed: 12);
        var reference = Near(policy, 0.5, 0, seed: 13);
        policy[7] = float.NegativeInfinity;
        policy[v + 49] = float.NegativeInfinity;
        Check(policy, reference, v, 1f, 1e-5, 1e-7);
    }

    [Test]
    public void BannedByReferenceOnly_IsInfinite([Values(50, 1000)] int v)
    {
        var policy = Logits(2, v, seed: 14);
        var reference = Near(policy, 0.5, 0, seed: 15);
        reference[v + 20] = float.NegativeInfinity;
        var kl = Run(policy, reference, v, 1f);
        Assert.That(float.IsFinite(kl[0]), Is.True);
        Assert.That(kl[1], Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void IdenticalRows_HaveZeroKl()
    {
        var policy = Logits(3, 333, seed: 16);
        Assert.That(Run(policy, policy, 333, 1.1f), Is.EqualTo(new[] { 0f, 0f, 0f }).Within(1e-6f));
    }

    [Test]
    public void NaNInReference_NamesArgumentRowAndIndex()
    {
        const int v = 20;
        var policy = Logits(3, v, seed: 17);
        var reference = Near(policy, 0.5, 0, seed: 18);
        reference[2 * v + 5] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => Run(policy, reference, v, 1f))!;
        Assert.That(e.ParamName, Is.EqualTo("referenceLogits"));
        Assert.That(e.Message, Does.Contain("referenceLogits[2, 5]").And.Contain("NaN"));
        policy[v + 19] = float.NaN;
        e = Assert.Throws<ArgumentException>(() => Run(policy, reference, v, 1f))!;
        Assert.That(e.Message, Does.Contain("policyLogits[1, 19]"));
    }

    [Test]
    public void NaN_IsFoundOnEveryPath([Values(0, 15, 64, 700, 999)] int column, [Values(1f, 0.5f)] float temperature, [Values(true, false)] bool inPolicy)
    {
        const int v = 1000;
        var policy = Logits(2, v, seed: 19);
        var reference = Near(policy, 0.5, 0, seed: 20);
        // Under a banned policy token the reference's NaN must still be found.
        policy[v + column] = inPolicy ? float.NaN : float.NegativeInfinity;
        if (!inPolicy) reference[v + column] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => Run(policy, reference, v, temperature))!;
        string name = inPolicy ? "policyLogits" : "referenceLogits";
        Assert.That(e.ParamName, Is.EqualTo(name));
        Assert.That(e.Message, Does.Contain($"{name}[1, {column}]").And.Contain("NaN"));
    }

    [Test]
    public void NaN_InALaneFarBelowTheRowMaximum_IsFound([Values(true, false)] bool inPolicy, [Values(64, 32)] int v)
    {
        // Lane 0 of the NaN's row holds only −∞ besides it (both models ban those tokens), so its weight in the
        // row's sums underflows to 0; its NaN must still flag the row.
        var policy = new float[v];
        var reference = new float[v];
        for (int j = 16; j < v; j += 16) policy[j] = reference[j] = float.NegativeInfinity;
        reference[0] = float.NegativeInfinity;
        policy[0] = float.NegativeInfinity;
        (inPolicy ? policy : reference)[0] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => Run(policy, reference, v, 1f))!;
        string name = inPolicy ? "policyLogits" : "referenceLogits";
        Assert.That(e.Message, Does.Contain($"{name}[0, 0]").And.Contain("NaN"));
    }

    [Test]
    public void ReferenceBanningATokenInALaneFarBelowTheMaximum_GivesInfinity()
    {
        // Lane 0's logits sit 1000 below the row's maximum, so its weight in the lanes' merge underflows even in
        // double; the reference bans one of its tokens, and KL(p‖q) is still +∞ (p > 0 there).
        const int v = 64;
        var policy = new float[v];
        var reference = new float[v];
        for (int j = 0; j < v; j += 16) policy[j] = -1000f;
        reference[16] = float.NegativeInfinity;
        Assert.That(Run(policy, reference, v, 1f)[0], Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void BadShapes_AreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => KullbackLeibler.FullVocabulary(new float[20], new float[19], 10, 1f, new float[2]))!;
        Assert.That(e.ParamName, Is.EqualTo("referenceLogits"));
        e = Assert.Throws<ArgumentException>(() => KullbackLeibler.K1(new float[3], new float[4], new float[3]))!;
        Assert.That(e.ParamName, Is.EqualTo("referenceLogProbs"));
        Assert.Throws<ArgumentOutOfRangeException>(() => KullbackLeibler.FullVocabulary(new float[20], new float[20], 10, 0f, new float[2]));
    }

    [Test]
    public void SampledEstimators_MatchFormulas()
    {
        float[] logp = [-1f, -2.5f, -0.1f, -3f, -0.5f, -7f];
        float[] logq = [-1.2f, -2.5f, -0.1000001f, -1f, -0.5001f, -0.5f];
        var k1 = new float[6];
        var k2 = new float[6];
        var k3 = new float[6];
        KullbackLeibler.K1(logp, logq, k1);
        KullbackLeibler.K2(logp, logq, k2);
        KullbackLeibler.K3(logp, logq, k3);
        for (int i = 0; i < 6; i++)
        {
            double logRatio = (double)logq[i] - logp[i];
            double r = Math.Exp(logRatio);
            AssertClose(-logRatio, k1[i], 1e-6, 1e-7, $"k1[{i}]");
            AssertClose(0.5 * logRatio * logRatio, k2[i], 1e-6, 0, $"k2[{i}]");
            // (r − 1) − log r = Σ_{k≥2} u^k/k!: the series in double is the exact reference even for tiny u.
            double series = 0, term = logRatio;
            for (int k = 2; k < 40; k++)
            {
                term *= logRatio / k;
                series += term;
            }

            AssertClose(series, k3[i], 1e-6, 0, $"k3[{i}]");
            Assert.That(k3[i], Is.GreaterThanOrEqualTo(0f));
            Assert.That(Math.Abs(r - 1 - logRatio - series), Is.LessThan(1e-12));
        }
    }
}
