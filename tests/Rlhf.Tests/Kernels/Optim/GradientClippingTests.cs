using Rlhf.Kernels;
using Rlhf.Kernels.Optim;
using Rlhf.Tests.Support;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Optim;

public class GradientClippingTests
{
    [TestCase(1, 0.1f)]
    [TestCase(1000, 1f)]
    [TestCase(1000, 1e6f)]
    [TestCase(1_000_003, 5f)]
    public void MatchesScalarReference(int n, float maxNorm)
    {
        var g = Normal(new Random(n), n);
        var original = (float[])g.Clone();
        double norm = OptimReference.Norm(g);
        float got = GradientClipping.ClipByGlobalNorm(g, maxNorm);
        AssertClose(norm, got, 1e-6, 0, "norm");
        double coef = Math.Min(1.0, maxNorm / (norm + 1e-6));
        var expected = original.Select(x => x * coef).ToArray();
        AssertClose(expected, g, 1e-6, 0, "clipped");
        Assert.That(GradientClipping.GlobalNorm(original), Is.EqualTo(got));
    }

    [Test]
    public void HugeFiniteGradientsAreClippedNotZeroed()
    {
        // 2e19² overflows a float sum though the norm fits in a float: the norm must come out 2e19, not +∞.
        var g = new float[3000];
        g[5] = 2e19f;
        g[2999] = 1f;
        Assert.That(GradientClipping.GlobalNorm(g), Is.EqualTo(2e19f).Within(1e13f));
        float norm = GradientClipping.ClipByGlobalNorm(g, 1f);
        Assert.That(norm, Is.EqualTo(2e19f).Within(1e13f));
        Assert.That(g[5], Is.EqualTo(1f).Within(1e-6f));
        Assert.That(g[2999], Is.EqualTo(5e-20f).Within(1e-25f));
        var infinite = new float[3000];
        infinite[7] = float.PositiveInfinity;
        Assert.That(GradientClipping.GlobalNorm(infinite), Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void ListFormSharesOneNorm()
    {
        var rng = new Random(3);
        var a = Normal(rng, 517);
        var b = Normal(rng, 300);
        var e = new float[0];
        double norm = OptimReference.Norm(a, b);
        var bufs = new Memory<float>[] { a, e, b };
        var ac = (float[])a.Clone();
        float got = GradientClipping.ClipByGlobalNorm(bufs, 2f);
        AssertClose(norm, got, 1e-6, 0, "norm");
        AssertClose(ac.Select(x => x * 2.0 / (norm + 1e-6)).ToArray(), a, 1e-6, 0, "first buffer");
        Assert.That(OptimReference.Norm(a, b), Is.EqualTo(2.0).Within(1e-5));
    }

    [Test]
    public void MatchesTorchFixture()
    {
        var f = Fixture.Load("ppo_clip_grad_norm");
        foreach (var name in new[] { "clip", "noclip" })
        {
            var a = f["grad_a"].AsFloats();
            var b = f["grad_b"].AsFloats();
            float norm = GradientClipping.ClipByGlobalNorm(new Memory<float>[] { a, b }, (float)f[$"max_norm_{name}"].Scalar);
            AssertClose(f[$"norm_{name}"].Scalar, norm, 1e-5, 1e-6, $"norm ({name})");
            AssertClose(f[$"clipped_a_{name}"].Data, a, 1e-5, 1e-7, $"a ({name})");
            AssertClose(f[$"clipped_b_{name}"].Data, b, 1e-5, 1e-7, $"b ({name})");
        }
    }

    [Test]
    public void NormIsTheSameBitsForAnyThreadCount()
    {
        var g = Normal(new Random(9), 3_000_001);
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            float n1 = GradientClipping.GlobalNorm(g);
            KernelParallelism.MaxThreads = 2;
            float n2 = GradientClipping.GlobalNorm(g);
            KernelParallelism.MaxThreads = 5;
            Assert.That(GradientClipping.GlobalNorm(g), Is.EqualTo(n1));
            Assert.That(n2, Is.EqualTo(n1));
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }
    }

    [Test]
    public void RejectsBadArguments()
    {
        var g = new float[10];
        g[7] = float.PositiveInfinity;
        var ex = Assert.Throws<ArgumentException>(() => GradientClipping.ClipByGlobalNorm(g, 1f));
        Assert.That(ex!.ParamName, Is.EqualTo("gradients"));
        Assert.That(ex.Message, Does.Contain("gradients[7]").And.Contain("∞").Or.Contain("Infinity"));
        var h = new float[4];
        h[2] = float.NaN;
        var ex2 = Assert.Throws<ArgumentException>(() => GradientClipping.ClipByGlobalNorm(new Memory<float>[] { new float[3], h }, 1f));
        Assert.That(ex2!.Message, Does.Contain("gradients[1][2]").And.Contain("NaN"));
        var ex3 = Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm(new float[3], 0f));
        Assert.That(ex3!.ParamName, Is.EqualTo("maxNorm"));
    }
}
