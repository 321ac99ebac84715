using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

public class RewardsTests
{
    [TestCase(1, 1)]
    [TestCase(1, 40)]
    [TestCase(6, 1)]
    [TestCase(9, 53)]
    [TestCase(300, 70)]
    public void MatchesScalarReference(int batch, int steps)
    {
        var rng = new Random(batch * 31 + steps);
        var kl = Normal(rng, batch * steps, 0.3f);
        var scores = Normal(rng, batch, 2f);
        var mask = Mask(rng, batch, steps);
        var rewards = Uniform(rng, batch * steps, 5f, 6f); // stale contents must be overwritten
        PpoRewards.Compute(PoisonMasked(kl, mask), scores, mask, rewards, batch, steps, 0.05f);
        AssertClose(PpoReference.Rewards(kl, scores, mask, batch, steps, 0.05), rewards, 1e-6, 1e-7, "rewards");
    }

    [Test]
    public void AllMaskedRowGetsNothingAndScoreGoesToLastValidToken()
    {
        var kl = new float[] { 1, 1, 1, 1, 2, 2, 2, 2 };
        var mask = new float[] { 0, 0, 0, 0, 1, 1, 0, 0 };
        var rewards = new float[8];
        PpoRewards.Compute(kl, new float[] { float.NaN, 10f }, mask, rewards, 2, 4, 0.5f);
        Assert.That(rewards, Is.EqualTo(new float[] { 0, 0, 0, 0, -1, 9, 0, 0 }));
    }

    [Test]
    public void RejectsBadArguments()
    {
        var rewards = new float[8];
        var ex = Assert.Throws<ArgumentException>(() => PpoRewards.Compute(new float[8], new float[3], new float[8], rewards, 2, 4, 0.1f));
        Assert.That(ex!.ParamName, Is.EqualTo("scores"));
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => PpoRewards.Compute(new float[8], new float[2], new float[8], rewards, 2, 4, -0.1f));
        Assert.That(ex2!.ParamName, Is.EqualTo("klCoef"));
        var kl = new float[8];
        kl[6] = float.NaN;
        var mask = new float[] { 1, 1, 1, 1, 1, 1, 1, 1 };
        var ex3 = Assert.Throws<ArgumentException>(() => PpoRewards.Compute(kl, new float[2], mask, rewards, 2, 4, 0.1f));
        Assert.That(ex3!.ParamName, Is.EqualTo("kl"));
        Assert.That(ex3.Message, Does.Contain("kl[6]").And.Contain("row 1, step 2"));
    }

    [Test]
    public void NaNAfterAFalseAlarmInTheSameChunkThrows()
    {
        // With klCoef = 0, row 1's kl = +∞ gives −0·∞ = NaN without a NaN input: the cheap alarm goes off there, and
        // the exact check must go on to row 3's NaN.
        const int b = 8, t = 64;
        var kl = new float[b * t];
        var mask = Enumerable.Repeat(1f, b * t).ToArray();
        kl[1 * t + 7] = float.PositiveInfinity;
        kl[3 * t + 5] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() => PpoRewards.Compute(kl, new float[b], mask, new float[b * t], b, t, 0f));
        Assert.That(ex!.ParamName, Is.EqualTo("kl"));
        Assert.That(ex.Message, Does.Contain($"kl[{3 * t + 5}]"));
    }
}
