using Rlhf.Kernels;
using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

public class PolicyLossTests
{
    private static (float[] NewLp, float[] OldLp, float[] Adv, float[] Mask) Inputs(int seed, int batch, int steps, float spread)
    {
        var rng = new Random(seed);
        var old = Uniform(rng, batch * steps, -4f, 0f);
        var noise = Uniform(rng, batch * steps, -spread, spread);
        var nw = new float[old.Length];
        for (int i = 0; i < nw.Length; i++) nw[i] = old[i] + noise[i];
        return (nw, old, Normal(rng, batch * steps), Mask(rng, batch, steps));
    }

    [TestCase(1, 1, 0.2f, 0.5f)]
    [TestCase(1, 37, 0.2f, 0.5f)]
    [TestCase(5, 1, 0.2f, 0.5f)]
    [TestCase(7, 53, 0.2f, 0.3f)]
    [TestCase(6, 100, 0.1f, 3f)] // ratios far outside the clip range, both sides
    [TestCase(3, 64, 0f, 0.5f)]
    [TestCase(40, 700, 0.2f, 1f)] // several chunks
    public void MatchesScalarReference(int batch, int steps, float eps, float spread)
    {
        var (nw, old, adv, mask) = Inputs(batch * 1000 + steps, batch, steps, spread);
        var grad = new float[nw.Length];
        var s = PolicyLoss.Compute(PoisonMasked(nw, mask), PoisonMasked(old, mask), PoisonMasked(adv, mask), mask, grad, batch, steps, eps, 0.5f);
        var r = PpoReference.Policy(nw, old, adv, mask, eps, 0.5);

        AssertClose(r.Loss, s.Loss, 1e-5, 1e-6, "loss");
        AssertClose(r.ClipFraction, s.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(r.ApproxKl, s.ApproxKl, 1e-5, 1e-7, "approx KL");
        AssertClose(r.MeanRatio, s.MeanRatio, 1e-5, 1e-6, "mean ratio");
        Assert.That(s.ValidCount, Is.EqualTo(mask.Count(m => m != 0)));
        AssertClose(r.Grad, grad, 1e-5, 1e-9, "grad");
        if (spread >= 3f) Assert.That(s.ClipFraction, Is.GreaterThan(0.2f), "the case must exercise clipping");
    }

    [Test]
    public void AllMaskedBatchGivesZeros()
    {
        var (nw, old, adv, _) = Inputs(3, 2, 20, 1f);
        var grad = Uniform(new Random(1), 40, 1f, 2f);
        var s = PolicyLoss.Compute(nw, old, adv, new float[40], grad, 2, 20, 0.2f);
        Assert.That(s, Is.EqualTo(new PolicyLossStats(0f, 0f, 0f, 0f, 0)));
        Assert.That(grad, Is.All.EqualTo(0f));
    }

    [Test]
    public void GradientMatchesCentralDifferences()
    {
        const int batch = 3, steps = 21;
        const float eps = 0.2f, h = 1e-2f;
        var (nw, old, adv, mask) = Inputs(11, batch, steps, 1f);
        var grad = new float[nw.Length];
        var scratch = new float[nw.Length];
        PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, eps);
        int checkedCount = 0;
        for (int i = 0; i < nw.Length; i++)
        {
            // Central differences are meaningless across the kinks of max/clip: skip points whose branch flips.
            if (mask[i] != 0 && Branch(nw[i] + h, old[i], adv[i], eps) != Branch(nw[i] - h, old[i], adv[i], eps)) continue;
            float keep = nw[i];
            nw[i] = keep + h;
            double up = PolicyLoss.Compute(nw, old, adv, mask, scratch, batch, steps, eps).Loss;
            nw[i] = keep - h;
            double down = PolicyLoss.Compute(nw, old, adv, mask, scratch, batch, steps, eps).Loss;
            nw[i] = keep;
            double fd = (up - down) / (2.0 * h);
            Assert.That(grad[i], Is.EqualTo(fd).Within(2e-3 * Math.Abs(fd) + 2e-6), $"d loss / d newLogp[{i}]");
            checkedCount++;
        }

        Assert.That(checkedCount, Is.GreaterThan(nw.Length * 3 / 4));
    }

    private static int Branch(float newLp, float oldLp, float a, float eps)
    {
        double ratio = Math.Exp((double)newLp - oldLp);
        int region = ratio < 1 - eps ? 0 : ratio > 1 + eps ? 2 : 1;
        double l1 = -a * ratio, l2 = -a * Math.Clamp(ratio, 1 - eps, 1 + eps);
        return region * 2 + (l1 >= l2 ? 1 : 0);
    }

    [Test]
    public void DeterministicAcrossThreadCounts()
    {
        var (nw, old, adv, mask) = Inputs(5, 64, 700, 1f);
        var g1 = new float[nw.Length];
        var g2 = new float[nw.Length];
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            var s1 = PolicyLoss.Compute(nw, old, adv, mask, g1, 64, 700, 0.2f);
            KernelParallelism.MaxThreads = 4;
            var s2 = PolicyLoss.Compute(nw, old, adv, mask, g2, 64, 700, 0.2f);
            Assert.That(s2, Is.EqualTo(s1));
            Assert.That(g2, Is.EqualTo(g1));
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }
    }

    [Test]
    public void RejectsBadArguments()
    {
        var (nw, old, adv, mask) = Inputs(1, 2, 8, 1f);
        var grad = new float[16];
        var ex = Assert.Throws<ArgumentException>(() => PolicyLoss.Compute(nw, old.AsSpan(1), adv, mask, grad, 2, 8, 0.2f));
        Assert.That(ex!.ParamName, Is.EqualTo("oldLogProbs"));
        Assert.That(ex.Message, Does.Contain("15"));
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => PolicyLoss.Compute(nw, old, adv, mask, grad, 2, 8, -0.1f));
        Assert.That(ex2!.ParamName, Is.EqualTo("clipRange"));
        Assert.That(ex2.Message, Does.Contain("-0.1"));
        var ex3 = Assert.Throws<ArgumentOutOfRangeException>(() => PolicyLoss.Compute(nw, old, adv, mask, grad, 0, 8, 0.2f));
        Assert.That(ex3!.ParamName, Is.EqualTo("batch"));
        Assert.Throws<ArgumentOutOfRangeException>(() => PolicyLoss.Compute(nw, old, adv, mask, grad, 2, -8, 0.2f));

        mask.AsSpan().Fill(1f);
        adv[11] = float.NaN;
        var ex4 = Assert.Throws<ArgumentException>(() => PolicyLoss.Compute(nw, old, adv, mask, grad, 2, 8, 0.2f));
        Assert.That(ex4!.ParamName, Is.EqualTo("advantages"));
        Assert.That(ex4.Message, Does.Contain("advantages[11]").And.Contain("row 1, step 3").And.Contain("NaN"));
    }

    [Test]
    public void NaNAtAValidTokenThrowsOnTheVectorPaths([Values(0, 1, 2)] int which, [Values(0.1f, 3f)] float spread, [Values(37, 70)] int index)
    {
        // 0.1: every vector takes the near-zero exp; 3: the general one. Of 80 tokens, 0–63 go four vectors at a time
        // (37 is in the third) and 64–79 one vector at a time.
        const int batch = 2, steps = 40;
        var (nw, old, adv, _) = Inputs(21, batch, steps, spread);
        var mask = Enumerable.Repeat(1f, batch * steps).ToArray();
        var inputs = new[] { nw, old, adv };
        inputs[which][index] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() => PolicyLoss.Compute(nw, old, adv, mask, new float[nw.Length], batch, steps, 0.2f));
        Assert.That(ex!.ParamName, Is.EqualTo(new[] { "newLogProbs", "oldLogProbs", "advantages" }[which]));
        Assert.That(ex.Message, Does.Contain($"[{index}]").And.Contain($"row {index / steps}, step {index % steps}"));
    }

    [Test]
    public void InfiniteAdvantageAtAValidTokenThrows(
        [Values(float.PositiveInfinity, float.NegativeInfinity)] float a, [Values(0.1f, 3f)] float spread, [Values(37, 70, 81)] int index,
        [Values(0.2f, 1f)] float eps)
    {
        // Of 2 × 41 tokens, 0–63 go four vectors at a time, 64–79 one vector at a time and 80–81 through the scalar tail;
        // spread 0.1 takes the near-zero exp, 3 the general one. ε = 1 makes the clipped ratio's lower end 0 (∞·0).
        const int batch = 2, steps = 41;
        var (nw, old, adv, _) = Inputs(25, batch, steps, spread);
        var mask = Enumerable.Repeat(1f, batch * steps).ToArray();
        adv[index] = a;
        var ex = Assert.Throws<ArgumentException>(() => PolicyLoss.Compute(nw, old, adv, mask, new float[nw.Length], batch, steps, eps));
        Assert.That(ex!.ParamName, Is.EqualTo("advantages"));
        Assert.That(ex.Message, Does.Contain($"advantages[{index}]").And.Contain($"row {index / steps}, step {index % steps}")
            .And.Contain("infinite"));
    }

    [Test]
    public void InfiniteAdvantageUnderTheMaskIsIgnored()
    {
        const int batch = 2, steps = 41;
        var (nw, old, adv, mask) = Inputs(26, batch, steps, 0.5f);
        mask[37] = mask[70] = mask[81] = 0f;
        var grad = new float[nw.Length];
        var expected = PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, 0.2f);
        adv[37] = adv[81] = float.PositiveInfinity;
        adv[70] = float.NegativeInfinity;
        var grad2 = new float[nw.Length];
        Assert.That(PolicyLoss.Compute(nw, old, adv, mask, grad2, batch, steps, 0.2f), Is.EqualTo(expected));
        Assert.That(grad2, Is.EqualTo(grad));
    }

    [Test]
    public void NewLogProbMinusInfinityIsARatioOfZero([Values(37, 70, 81)] int index, [Values(1f, -1f)] float sign)
    {
        // A token the new policy bans (−∞ log-prob, as TokenStatistics gives for a −∞ logit): ratio 0, so the token's
        // gradient is 0 and its loss is max(−0, −A·(1 − ε)); the log-ratio is −∞, so ApproxKl is +∞ (TRL's values).
        const int batch = 2, steps = 41;
        var (nw, old, adv, _) = Inputs(27, batch, steps, 0.5f);
        var mask = Enumerable.Repeat(1f, batch * steps).ToArray();
        nw[index] = float.NegativeInfinity;
        adv[index] = sign * Math.Abs(adv[index]);
        var grad = new float[nw.Length];
        var s = PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, 0.2f);
        var r = PpoReference.Policy(nw, old, adv, mask, 0.2);
        AssertClose(r.Loss, s.Loss, 1e-5, 1e-6, "loss");
        AssertClose(r.ClipFraction, s.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(r.MeanRatio, s.MeanRatio, 1e-5, 1e-6, "mean ratio");
        AssertClose(r.Grad, grad, 1e-5, 1e-9, "grad");
        Assert.That(grad[index], Is.EqualTo(0f));
        Assert.That(s.ApproxKl, Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void OverflowedRatioWithZeroAdvantageAddsNothingWhereverItSits([Values(0, 16)] int index)
    {
        // ratio = e^100 = +∞ and A = 0: the unclipped term 0·∞ is NaN; index 0 is in a vector, 16 in the scalar tail,
        // which used to give a NaN loss there and 0 in the vector.
        const int batch = 1, steps = 17;
        var nw = new float[steps];
        var old = new float[steps];
        var adv = new float[steps];
        var mask = Enumerable.Repeat(1f, steps).ToArray();
        for (int i = 0; i < steps; i++) adv[i] = i % 2 == 0 ? 0.5f : -0.25f;
        nw[index] = 100f;
        adv[index] = 0f;
        var grad = new float[steps];
        var s = PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, 0.2f);
        // Every other token has ratio 1 (unclipped, loss −A); the overflowed one adds −0 and counts clipped.
        double expected = 0;
        for (int i = 0; i < steps; i++) expected += i == index ? 0 : -adv[i];
        Assert.That(s.Loss, Is.EqualTo(expected / steps).Within(1e-7));
        Assert.That(s.ClipFraction, Is.EqualTo(1f / steps).Within(1e-7));
        Assert.That(grad[index], Is.EqualTo(0f));
        Assert.That(s.MeanRatio, Is.EqualTo(float.PositiveInfinity));
    }

    [TestCase(0, float.PositiveInfinity, 37)]
    [TestCase(0, float.PositiveInfinity, 81)]
    [TestCase(1, float.NegativeInfinity, 37)]
    [TestCase(1, float.NegativeInfinity, 70)]
    [TestCase(1, float.PositiveInfinity, 81)]
    public void LogProbThatIsNoLogProbabilityThrows(int which, float value, int index)
    {
        // +∞ is no log-probability, and an old log-prob of −∞ is a token the rollout policy could not have sampled
        // (its ratio would be infinite: an infinite or NaN loss and gradient).
        const int batch = 2, steps = 41;
        var (nw, old, adv, _) = Inputs(28, batch, steps, 0.5f);
        var mask = Enumerable.Repeat(1f, batch * steps).ToArray();
        var inputs = new[] { nw, old };
        inputs[which][index] = value;
        var ex = Assert.Throws<ArgumentException>(() => PolicyLoss.Compute(nw, old, adv, mask, new float[nw.Length], batch, steps, 0.2f));
        string name = new[] { "newLogProbs", "oldLogProbs" }[which];
        Assert.That(ex!.ParamName, Is.EqualTo(name));
        Assert.That(ex.Message, Does.Contain($"{name}[{index}]").And.Contain($"row {index / steps}, step {index % steps}"));
    }

    [Test]
    public void OutputsOverlappingInputsAreRejected()
    {
        // The NaN check reads the inputs again after the kernel: a gradient written over newLogProbs would have
        // erased a NaN there (its gradient is 0), so the loss came back NaN with no error naming it.
        var x = new float[8];
        var ones = Enumerable.Repeat(1f, 8).ToArray();
        var policy = Assert.Throws<ArgumentException>(() => PolicyLoss.Compute(x, new float[8], new float[8], ones, x, 2, 4, 0.2f))!;
        Assert.That(policy.ParamName, Is.EqualTo("gradNewLogProbs"));
        Assert.That(policy.Message, Does.Contain("newLogProbs"));
        var value = Assert.Throws<ArgumentException>(() => ValueLoss.Compute(new float[8], new float[8], x, ones, x.AsSpan(), 2, 4, 0.2f))!;
        Assert.That(value.ParamName, Is.EqualTo("gradValues"));
        Assert.That(value.Message, Does.Contain("returns"));
        var gae = Assert.Throws<ArgumentException>(() => Gae.Compute(x, new float[8], ones, new float[8], x, 2, 4, 0.9f, 0.9f))!;
        Assert.That(gae.ParamName, Is.EqualTo("returns"));
        var rewards = Assert.Throws<ArgumentException>(() => PpoRewards.Compute(x, new float[2], ones, x, 2, 4, 0.1f))!;
        Assert.That(rewards.ParamName, Is.EqualTo("rewards"));
    }
}
