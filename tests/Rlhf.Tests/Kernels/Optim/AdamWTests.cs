using Rlhf.Kernels;
using Rlhf.Kernels.Optim;
using Rlhf.Tests.Support;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Optim;

public class AdamWTests
{
    [TestCase(1, 0.0f)]
    [TestCase(17, 0.01f)]
    [TestCase(1000, 0.1f)]
    [TestCase(300_001, 0.01f)] // several chunks and a ragged tail
    public void FiveStepsMatchScalarReference(int n, float wd)
    {
        var rng = new Random(n);
        var p = Normal(rng, n);
        var m = new float[n];
        var v = new float[n];
        var pr = ToDouble(p);
        var mr = new double[n];
        var vr = new double[n];
        for (int step = 1; step <= 5; step++)
        {
            var g = Normal(rng, n, 0.1f * step);
            AdamW.Step(p, g, m, v, step, 1e-2, 0.9, 0.999, 1e-8, wd);
            OptimReference.AdamWStep(pr, g, mr, vr, step, 1e-2, 0.9, 0.999, 1e-8, wd);
        }

        AssertClose(pr, p, 1e-5, 1e-6, "params");
        AssertClose(mr, m, 1e-5, 1e-7, "exp_avg");
        AssertClose(vr, v, 1e-5, 1e-9, "exp_avg_sq");
    }

    [Test]
    public void MatchesTorchFixture()
    {
        var f = Fixture.Load("ppo_adamw");
        var p = f["params0"].AsFloats();
        var grads = f["grads"].AsFloats();
        var after = f["params"].Data;
        int n = p.Length;
        var m = new float[n];
        var v = new float[n];
        for (int step = 1; step <= 3; step++)
        {
            AdamW.Step(p, grads.AsSpan((step - 1) * n, n), m, v, step, f["lr"].Scalar, f["beta1"].Scalar,
                f["beta2"].Scalar, f["eps"].Scalar, f["weight_decay"].Scalar);
            AssertClose(after.AsSpan((step - 1) * n, n), p, 1e-5, 1e-6, $"params after step {step}");
        }

        AssertClose(f["exp_avg"].Data, m, 1e-5, 1e-7, "exp_avg");
        AssertClose(f["exp_avg_sq"].Data, v, 1e-5, 1e-9, "exp_avg_sq");
    }

    [Test]
    public void SameBitsForAnyThreadCount()
    {
        var rng = new Random(5);
        var p1 = Normal(rng, 500_000);
        var g = Normal(rng, p1.Length);
        var p2 = (float[])p1.Clone();
        var m1 = new float[p1.Length];
        var v1 = new float[p1.Length];
        var m2 = new float[p1.Length];
        var v2 = new float[p1.Length];
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            AdamW.Step(p1, g, m1, v1, 1, 1e-3);
            KernelParallelism.MaxThreads = 2;
            AdamW.Step(p2, g, m2, v2, 1, 1e-3);
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }

        Assert.That(p2, Is.EqualTo(p1));
    }

    [Test]
    public void RejectsBadArguments()
    {
        var x = new float[8];
        var ex = Assert.Throws<ArgumentException>(() => AdamW.Step(x, x, x, new float[7], 1, 1e-3));
        Assert.That(ex!.ParamName, Is.EqualTo("secondMoment"));
        Assert.That(ex.Message, Does.Contain("7").And.Contain("8"));
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => AdamW.Step(x, x, x, x, 0, 1e-3));
        Assert.That(ex2!.ParamName, Is.EqualTo("step"));
        var ex3 = Assert.Throws<ArgumentOutOfRangeException>(() => AdamW.Step(x, x, x, x, 1, 1e-3, beta1: 1.0));
        Assert.That(ex3!.ParamName, Is.EqualTo("beta1"));
        var ex4 = Assert.Throws<ArgumentOutOfRangeException>(() => AdamW.Step(x, x, x, x, 1, double.NaN));
        Assert.That(ex4!.ParamName, Is.EqualTo("learningRate"));
        var ex5 = Assert.Throws<ArgumentOutOfRangeException>(() => AdamW.Step(x, x, x, x, 1, 1e-3, weightDecay: -1.0));
        Assert.That(ex5!.ParamName, Is.EqualTo("weightDecay"));
        Assert.That(ex5.Message, Does.Contain("-1"));
    }
}
