using Rlhf.Kernels;
using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

public class MaskedWhiteningTests
{
    [TestCase(1, 2, true)]
    [TestCase(1, 37, true)]
    [TestCase(7, 53, false)]
    [TestCase(300, 130, true)]
    public void MatchesScalarReference(int batch, int steps, bool shiftMean)
    {
        var rng = new Random(batch + steps);
        var x = Normal(rng, batch * steps, 3f);
        for (int i = 0; i < x.Length; i++) x[i] += 5f; // an offset mean exercises the centring
        var mask = Mask(rng, batch, steps);
        if (mask.Count(m => m != 0) < 2) mask.AsSpan().Fill(1f);
        var y = new float[x.Length];
        var m = MaskedWhitening.Whiten(PoisonMasked(x, mask), mask, y, shiftMean);
        var (mean, variance) = PpoReference.Moments(x, mask);
        AssertClose(mean, m.Mean, 1e-6, 1e-7, "mean");
        AssertClose(variance, m.Variance, 1e-6, 1e-7, "variance");
        AssertClose(PpoReference.Whiten(x, mask, shiftMean), y, 1e-5, 1e-6, "whitened");
    }

    [TestCase(1e4f, 0.1f)]
    [TestCase(-3e3f, 2f)]
    [TestCase(0f, 1e-3f)]
    public void MomentsStayAccurateFarFromZero(float offset, float scale)
    {
        // Many 1024-entry blocks merged across chunks, values far from 0 relative to their spread: the block-local
        // centring and the double-precision merge must keep the variance to float rounding of the inputs.
        var rng = new Random(9);
        var x = Normal(rng, 300 * 700, scale);
        for (int i = 0; i < x.Length; i++) x[i] += offset;
        var mask = Mask(rng, 300, 700);
        var m = MaskedWhitening.Moments(PoisonMasked(x, mask), mask);
        var (mean, variance) = PpoReference.Moments(x, mask);
        AssertClose(mean, m.Mean, 1e-7, 1e-9, "mean");
        AssertClose(variance, m.Variance, 1e-5, 0, "variance");
    }

    [Test]
    public void InPlaceAndDeterministicAcrossThreads()
    {
        var rng = new Random(4);
        var x = Normal(rng, 256 * 512);
        var mask = Mask(rng, 256, 512);
        var a = (float[])x.Clone();
        var b = (float[])x.Clone();
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            var m1 = MaskedWhitening.Whiten(a, mask, a);
            KernelParallelism.MaxThreads = 2;
            var m2 = MaskedWhitening.Whiten(b, mask, b);
            Assert.That(m2, Is.EqualTo(m1));
            Assert.That(b, Is.EqualTo(a));
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }

        AssertClose(PpoReference.Whiten(x, mask, true), a, 1e-5, 1e-6, "whitened in place");
    }

    [Test]
    public void RejectsBadArguments()
    {
        var ex = Assert.Throws<ArgumentException>(() => MaskedWhitening.Moments(new float[4], new float[] { 0, 1, 0, 0 }));
        Assert.That(ex!.ParamName, Is.EqualTo("mask"));
        Assert.That(ex.Message, Does.Contain("1 valid"));
        var ex2 = Assert.Throws<ArgumentException>(() => MaskedWhitening.Whiten(new float[4], new float[4], new float[3]));
        Assert.That(ex2!.ParamName, Is.EqualTo("destination"));
        var ex3 = Assert.Throws<ArgumentException>(() => MaskedWhitening.Moments(new float[] { 1, float.NaN, 2 }, new float[] { 1, 1, 1 }));
        Assert.That(ex3!.ParamName, Is.EqualTo("x"));
        Assert.That(ex3.Message, Does.Contain("x[1]"));
    }
}
