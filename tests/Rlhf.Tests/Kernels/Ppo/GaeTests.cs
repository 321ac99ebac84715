using Rlhf.Kernels;
using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

public class GaeTests
{
    [TestCase(1, 1, 0.99f, 0.95f)]
    [TestCase(1, 16, 1f, 0.95f)]
    [TestCase(4, 1, 0.9f, 0.9f)]
    [TestCase(7, 53, 1f, 0.95f)]
    [TestCase(7, 64, 0f, 0.95f)]
    [TestCase(7, 47, 0.9f, 0f)]
    [TestCase(7, 47, 0.97f, 1f)]
    [TestCase(5, 35, 1f, 1f)]
    [TestCase(70, 130, 0.99f, 0.95f)]
    public void MatchesScalarReference(int batch, int steps, float gamma, float lambda)
    {
        var rng = new Random(batch * 7 + steps);
        var r = Normal(rng, batch * steps, 0.2f);
        var v = Normal(rng, batch * steps);
        var mask = Mask(rng, batch, steps);
        var adv = new float[r.Length];
        var ret = Uniform(rng, r.Length, 1f, 2f);
        Gae.Compute(PoisonMasked(r, mask), PoisonMasked(v, mask), mask, adv, ret, batch, steps, gamma, lambda);
        var (ea, er) = PpoReference.Gae(r, v, mask, batch, steps, gamma, lambda);
        double abs = 2e-6 * (1 + steps / 8.0);
        AssertClose(ea, adv, 1e-5, abs, "advantages");
        AssertClose(er, ret, 1e-5, abs, "returns");
    }

    [TestCase(0.99f, 0.95f)]
    [TestCase(1f, 1f)]
    public void MaskedBlocksCarryTheChainToEarlierSteps(float gamma, float lambda)
    {
        // Whole 16-step blocks masked: before a valid block (δ = γ·v at the masked step just before it), between two
        // masked blocks, and as trailing padding; the kernel skips only the blocks whose δ is 0 throughout.
        const int steps = 96;
        var rng = new Random(12);
        var r = Normal(rng, 2 * steps, 0.2f);
        var v = Normal(rng, 2 * steps);
        var mask = new float[2 * steps];
        mask.AsSpan(0, 16).Fill(1f);
        mask.AsSpan(48, 16).Fill(1f);
        mask.AsSpan(steps + 16, 40).Fill(1f);
        var adv = new float[r.Length];
        var ret = new float[r.Length];
        Gae.Compute(PoisonMasked(r, mask), PoisonMasked(v, mask), mask, adv, ret, 2, steps, gamma, lambda);
        var (ea, er) = PpoReference.Gae(r, v, mask, 2, steps, gamma, lambda);
        AssertClose(ea, adv, 1e-5, 1e-5, "advantages");
        AssertClose(er, ret, 1e-5, 1e-5, "returns");
    }

    [Test]
    public void GammaZeroIsOneStepTemporalDifference()
    {
        var rng = new Random(3);
        var r = Normal(rng, 40);
        var v = Normal(rng, 40);
        var mask = Enumerable.Repeat(1f, 40).ToArray();
        var adv = new float[40];
        var ret = new float[40];
        Gae.Compute(r, v, mask, adv, ret, 2, 20, 0f, 0.7f);
        for (int i = 0; i < 40; i++)
        {
            Assert.That(adv[i], Is.EqualTo(r[i] - v[i]).Within(1e-6f), $"adv[{i}]");
            Assert.That(ret[i], Is.EqualTo(r[i]).Within(1e-6f), $"ret[{i}]");
        }
    }

    [Test]
    public void DeterministicAcrossThreadCounts()
    {
        var rng = new Random(8);
        int b = 64, t = 300;
        var r = Normal(rng, b * t);
        var v = Normal(rng, b * t);
        var mask = Mask(rng, b, t);
        var a1 = new float[b * t];
        var a2 = new float[b * t];
        var ret = new float[b * t];
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            Gae.Compute(r, v, mask, a1, ret, b, t, 0.99f, 0.95f);
            KernelParallelism.MaxThreads = 3;
            Gae.Compute(r, v, mask, a2, ret, b, t, 0.99f, 0.95f);
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }

        Assert.That(a2, Is.EqualTo(a1));
    }

    [Test]
    public void RejectsBadArguments()
    {
        var x = new float[12];
        var ones = Enumerable.Repeat(1f, 12).ToArray();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Gae.Compute(x, x, ones, new float[12], new float[12], 3, 4, 1.5f, 0.9f));
        Assert.That(ex!.ParamName, Is.EqualTo("gamma"));
        Assert.That(ex.Message, Does.Contain("1.5"));
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => Gae.Compute(x, x, ones, new float[12], new float[12], 3, 4, 0.9f, -0.1f));
        Assert.That(ex2!.ParamName, Is.EqualTo("lambda"));
        var ex3 = Assert.Throws<ArgumentException>(() => Gae.Compute(x, x, ones, new float[12], new float[11], 3, 4, 0.9f, 0.9f));
        Assert.That(ex3!.ParamName, Is.EqualTo("returns"));
        Assert.That(ex3.Message, Does.Contain("11").And.Contain("12"));
        var v = new float[12];
        v[9] = float.NaN;
        var ex4 = Assert.Throws<ArgumentException>(() => Gae.Compute(x, v, ones, new float[12], new float[12], 3, 4, 0.9f, 0.9f));
        Assert.That(ex4!.ParamName, Is.EqualTo("values"));
        Assert.That(ex4.Message, Does.Contain("values[9]").And.Contain("row 2, step 1"));
    }

    [TestCase(0f, 0.9f)] // γ = 0: neither the NaN value nor its advantage reaches any other step
    [TestCase(0.9f, 0f)] // γλ = 0: the advantage does not carry, only δ[t−1] sees the value
    [TestCase(0.99f, 0.95f)]
    public void NaNInTheVectorPathThrowsWhereverTheChainStops(float gamma, float lambda)
    {
        const int b = 3, t = 70;
        var rng = new Random(4);
        var r = Normal(rng, b * t);
        var v = Normal(rng, b * t);
        var ones = Enumerable.Repeat(1f, b * t).ToArray();
        v[t + 37] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() => Gae.Compute(r, v, ones, new float[b * t], new float[b * t], b, t, gamma, lambda));
        Assert.That(ex!.ParamName, Is.EqualTo("values"));
        Assert.That(ex.Message, Does.Contain($"values[{t + 37}]").And.Contain("row 1, step 37"));
    }

    [TestCase(0f, 0f)]
    [TestCase(0.99f, 0.95f)]
    public void NaNAtAnyStepOfARowThrows(float gamma, float lambda)
    {
        // The vector path looks for NaN only in each row's final carry, so every lane of every block must reach it.
        const int b = 2, t = 83;
        var rng = new Random(5);
        var ones = Enumerable.Repeat(1f, b * t).ToArray();
        for (int step = 0; step < t; step++)
        {
            var r = Normal(rng, b * t);
            var v = Normal(rng, b * t);
            r[t + step] = float.NaN;
            var ex = Assert.Throws<ArgumentException>(
                () => Gae.Compute(r, v, ones, new float[b * t], new float[b * t], b, t, gamma, lambda), $"step {step}");
            Assert.That(ex!.ParamName, Is.EqualTo("rewards"));
            Assert.That(ex.Message, Does.Contain($"rewards[{t + step}]"));
        }
    }

    [Test]
    public void NaNRowsOfOneChunkNameTheFirst()
    {
        // Rows are scanned last to first; the error still names the first bad element, as TRL's order would.
        const int t = 64;
        var (r, v) = OneChunkOfRows(7);
        r[5 * t + 9] = float.NaN;
        r[2 * t + 60] = float.NaN;
        var ex = ThrowsOnOneChunk(r, v);
        Assert.That(ex.Message, Does.Contain($"rewards[{2 * t + 60}]").And.Contain("row 2, step 60"));
    }

    [Test]
    public void NaNAfterAnInfiniteRowOfTheSameChunkThrows()
    {
        // +∞ and −∞ rewards in row 1 make its advantages NaN without a NaN input: the cheap alarm goes off there, and
        // the exact re-check must go on to row 3's NaN value.
        const int t = 64;
        var (r, v) = OneChunkOfRows(8);
        r[1 * t + 20] = float.PositiveInfinity;
        r[1 * t + 21] = float.NegativeInfinity;
        v[3 * t + 33] = float.NaN;
        var ex = ThrowsOnOneChunk(r, v);
        Assert.That(ex.ParamName, Is.EqualTo("values"));
        Assert.That(ex.Message, Does.Contain($"values[{3 * t + 33}]"));
    }

    /// <summary>Rewards and values for 8 × 64 steps, all valid: rows the kernel puts in one chunk.</summary>
    private static (float[] Rewards, float[] Values) OneChunkOfRows(int seed)
    {
        var rng = new Random(seed);
        return (Normal(rng, 8 * 64), Normal(rng, 8 * 64));
    }

    private static ArgumentException ThrowsOnOneChunk(float[] r, float[] v)
    {
        var ones = Enumerable.Repeat(1f, 8 * 64).ToArray();
        return Assert.Throws<ArgumentException>(() => Gae.Compute(r, v, ones, new float[8 * 64], new float[8 * 64], 8, 64, 0.99f, 0.95f))!;
    }

    [Test]
    public void InfiniteRewardPropagatesWithoutThrowing()
    {
        // ±∞ trips the kernel's cheap NaN alarm; the exact re-check must clear it.
        const int b = 2, t = 48;
        var rng = new Random(6);
        var r = Normal(rng, b * t);
        var v = Normal(rng, b * t);
        var ones = Enumerable.Repeat(1f, b * t).ToArray();
        r[t + 40] = float.PositiveInfinity;
        var adv = new float[b * t];
        var ret = new float[b * t];
        Gae.Compute(r, v, ones, adv, ret, b, t, 0.99f, 0.95f);
        Assert.That(adv[t + 40], Is.EqualTo(float.PositiveInfinity));
        Assert.That(adv[t + 3], Is.EqualTo(float.PositiveInfinity));
        Assert.That(float.IsFinite(adv[t + 41]) && float.IsFinite(adv[5]));
    }
}
