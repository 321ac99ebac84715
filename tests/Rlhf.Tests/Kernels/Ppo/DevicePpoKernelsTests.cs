using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

/// <summary>The ILGPU kernels on ILGPU's CPU accelerator against the span kernels, at small shapes.</summary>
[NonParallelizable]
public class DevicePpoKernelsTests
{
    private KernelDevice device = null!;
    private DevicePpoKernels kernels = null!;
    private readonly List<IDisposable> buffers = new();

    [OneTimeSetUp]
    public void SetUp()
    {
        device = KernelDevice.CreateCpu();
        kernels = new DevicePpoKernels(device);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        kernels.Dispose();
        device.Dispose();
    }

    [TearDown]
    public void FreeBuffers()
    {
        foreach (var b in buffers) b.Dispose();
        buffers.Clear();
    }

    private ArrayView<float> Up(float[] data)
    {
        var b = device.Accelerator.Allocate1D(data);
        buffers.Add(b);
        return b.View;
    }

    private static float[] Down(ArrayView<float> view)
    {
        var a = new float[view.Length];
        view.CopyToCPU(ref a[0], a.Length);
        return a;
    }

    [Test]
    public void GroupSizeFitsTheDevice() =>
        Assert.That(kernels.GroupSize, Is.LessThanOrEqualTo(device.MaxGroupSize).And.GreaterThan(1));

    [TestCase(1, 1)]
    [TestCase(5, 37)]
    [TestCase(9, 70)]
    public void PolicyLossMatchesCpu(int batch, int steps)
    {
        var rng = new Random(batch + steps);
        int n = batch * steps;
        var old = Uniform(rng, n, -3f, 0f);
        var nw = old.Select((x, i) => x + (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var adv = Normal(rng, n);
        var mask = Mask(rng, batch, steps);
        var grad = new float[n];
        var cpu = PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, 0.2f, 0.7f);
        var gView = Up(new float[n]);
        var dev = kernels.PolicyLoss(Up(PoisonMasked(nw, mask)), Up(old), Up(adv), Up(mask), gView, batch, steps, 0.2f, 0.7f);
        Assert.That(dev.ValidCount, Is.EqualTo(cpu.ValidCount));
        AssertClose(cpu.Loss, dev.Loss, 1e-5, 1e-6, "loss");
        AssertClose(cpu.ClipFraction, dev.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(cpu.ApproxKl, dev.ApproxKl, 1e-5, 1e-7, "approx KL");
        AssertClose(cpu.MeanRatio, dev.MeanRatio, 1e-5, 1e-6, "mean ratio");
        AssertClose(ToDouble(grad), Down(gView), 1e-5, 1e-8, "grad");
    }

    [TestCase(5, 37, 0.2f)]
    [TestCase(9, 70, float.PositiveInfinity)]
    public void ValueLossMatchesCpu(int batch, int steps, float eps)
    {
        var rng = new Random(batch * steps);
        int n = batch * steps;
        var old = Normal(rng, n);
        var v = old.Select(x => x + 0.5f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var ret = Normal(rng, n);
        var mask = Mask(rng, batch, steps);
        var grad = new float[n];
        var cpu = ValueLoss.Compute(v, old, ret, mask, grad, batch, steps, eps);
        var gView = Up(new float[n]);
        var dev = kernels.ValueLoss(Up(v), Up(old), Up(ret), Up(mask), gView, batch, steps, eps);
        Assert.That(dev.ValidCount, Is.EqualTo(cpu.ValidCount));
        AssertClose(cpu.Loss, dev.Loss, 1e-5, 1e-7, "loss");
        AssertClose(cpu.ClipFraction, dev.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(cpu.MeanSquaredError, dev.MeanSquaredError, 1e-5, 1e-7, "error");
        AssertClose(ToDouble(grad), Down(gView), 1e-5, 1e-8, "grad");
    }

    [Test]
    public void ValueLossWithClippingOffIgnoresInfiniteOldValues()
    {
        const int batch = 9, steps = 70;
        var rng = new Random(17);
        int n = batch * steps;
        var v = Normal(rng, n);
        var ret = Normal(rng, n);
        var mask = Mask(rng, batch, steps);
        var infinite = new float[n];
        for (int i = 0; i < n; i += 2)
        {
            infinite[i] = i % 4 == 0 ? float.PositiveInfinity : float.NegativeInfinity;
            mask[i] = 1f;
        }

        var gInfinite = Up(new float[n]);
        var dev = kernels.ValueLoss(Up(v), Up(infinite), Up(ret), Up(mask), gInfinite, batch, steps, float.PositiveInfinity, 0.7f);
        // The same bits as with finite old values (all 0 here): clipping off means the old values are not used.
        var gFinite = Up(new float[n]);
        var finite = kernels.ValueLoss(Up(v), Up(new float[n]), Up(ret), Up(mask), gFinite, batch, steps, float.PositiveInfinity, 0.7f);
        Assert.That(dev, Is.EqualTo(finite));
        Assert.That(Down(gInfinite), Is.EqualTo(Down(gFinite)));
        var grad = new float[n];
        var cpu = ValueLoss.Compute(v, infinite, ret, mask, grad, batch, steps, float.PositiveInfinity, 0.7f);
        Assert.That(dev.ClipFraction, Is.EqualTo(0f));
        AssertClose(cpu.Loss, dev.Loss, 1e-5, 1e-7, "loss");
        AssertClose(cpu.MeanSquaredError, dev.MeanSquaredError, 1e-5, 1e-7, "error");
        AssertClose(ToDouble(grad), Down(gInfinite), 1e-5, 1e-8, "grad");
    }

    [TestCase(2, float.PositiveInfinity, 0.2f)]
    [TestCase(2, float.NegativeInfinity, 0.2f)]
    [TestCase(2, float.PositiveInfinity, 1f)]
    [TestCase(1, float.NegativeInfinity, 0.2f)]
    [TestCase(0, float.PositiveInfinity, 0.2f)]
    public void PolicyLossRejectsInfiniteAdvantagesAndImpossibleLogProbs(int which, float value, float eps)
    {
        const int batch = 5, steps = 37, index = 3 * steps + 11;
        var rng = new Random(19);
        int n = batch * steps;
        var old = Uniform(rng, n, -3f, 0f);
        var nw = old.Select(x => x + 0.3f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var adv = Normal(rng, n);
        var mask = Enumerable.Repeat(1f, n).ToArray();
        var inputs = new[] { nw, old, adv };
        inputs[which][index] = value;
        var ex = Assert.Throws<ArgumentException>(() =>
            kernels.PolicyLoss(Up(nw), Up(old), Up(adv), Up(mask), Up(new float[n]), batch, steps, eps));
        string name = new[] { "newLogProbs", "oldLogProbs", "advantages" }[which];
        Assert.That(ex!.ParamName, Is.EqualTo(name));
        Assert.That(ex.Message, Does.Contain($"{name}[{index}]").And.Contain("row 3, step 11"));
    }

    [Test]
    public void PolicyLossTakesAMinusInfiniteNewLogProbAsARatioOfZero()
    {
        const int batch = 5, steps = 37;
        var rng = new Random(20);
        int n = batch * steps;
        var old = Uniform(rng, n, -3f, 0f);
        var nw = old.Select(x => x + 0.3f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var adv = Normal(rng, n);
        var mask = Mask(rng, batch, steps);
        mask[12] = mask[40] = 1f;
        nw[12] = nw[40] = float.NegativeInfinity;
        adv[12] = 1f;
        adv[40] = -1f;
        var grad = new float[n];
        var cpu = PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, 0.2f);
        var gView = Up(new float[n]);
        var dev = kernels.PolicyLoss(Up(nw), Up(old), Up(adv), Up(mask), gView, batch, steps, 0.2f);
        Assert.That(dev.ApproxKl, Is.EqualTo(float.PositiveInfinity));
        Assert.That(cpu.ApproxKl, Is.EqualTo(float.PositiveInfinity));
        AssertClose(cpu.Loss, dev.Loss, 1e-5, 1e-6, "loss");
        AssertClose(cpu.ClipFraction, dev.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(cpu.MeanRatio, dev.MeanRatio, 1e-5, 1e-6, "mean ratio");
        var g = Down(gView);
        Assert.That(g[12], Is.EqualTo(0f));
        Assert.That(g[40], Is.EqualTo(0f));
        AssertClose(ToDouble(grad), g, 1e-5, 1e-8, "grad");
    }

    [Test]
    public void PolicyLossWithAnOverflowedRatioAndZeroAdvantageMatchesTheCpu()
    {
        // ratio e^100 = +∞ with A = 0: 0·∞ is NaN; both paths take the clipped term (the token adds 0, counts clipped).
        const int batch = 3, steps = 17;
        var rng = new Random(21);
        int n = batch * steps;
        var old = Uniform(rng, n, -3f, 0f);
        var nw = old.Select(x => x + 0.3f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var adv = Normal(rng, n);
        var mask = Enumerable.Repeat(1f, n).ToArray();
        foreach (int i in new[] { 0, 16, 30 })
        {
            nw[i] = old[i] + 100f;
            adv[i] = 0f;
        }

        var grad = new float[n];
        var cpu = PolicyLoss.Compute(nw, old, adv, mask, grad, batch, steps, 0.2f);
        var gView = Up(new float[n]);
        var dev = kernels.PolicyLoss(Up(nw), Up(old), Up(adv), Up(mask), gView, batch, steps, 0.2f);
        Assert.That(float.IsFinite(cpu.Loss) && float.IsFinite(dev.Loss), $"cpu {cpu.Loss}, device {dev.Loss}");
        AssertClose(cpu.Loss, dev.Loss, 1e-5, 1e-6, "loss");
        AssertClose(cpu.ClipFraction, dev.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(ToDouble(grad), Down(gView), 1e-5, 1e-8, "grad");
    }

    [Test]
    public void AllMaskedLossesAreZero()
    {
        var x = Up(Normal(new Random(1), 40));
        var g = Up(Uniform(new Random(2), 40, 1f, 2f));
        var s = kernels.PolicyLoss(x, x, x, Up(new float[40]), g, 4, 10, 0.2f);
        Assert.That(s, Is.EqualTo(new PolicyLossStats(0f, 0f, 0f, 0f, 0)));
        Assert.That(Down(g), Is.All.EqualTo(0f));
    }

    [TestCase(1, 1)]
    [TestCase(6, 37)]
    public void RewardsMatchCpu(int batch, int steps)
    {
        var rng = new Random(3 + batch);
        int n = batch * steps;
        var kl = Normal(rng, n, 0.3f);
        var scores = Normal(rng, batch);
        var mask = Mask(rng, batch, steps);
        var cpu = new float[n];
        PpoRewards.Compute(kl, scores, mask, cpu, batch, steps, 0.1f);
        var outView = Up(new float[n]);
        kernels.Rewards(Up(kl), Up(scores), Up(mask), outView, batch, steps, 0.1f);
        AssertClose(ToDouble(cpu), Down(outView), 1e-6, 1e-7, "rewards");
    }

    [TestCase(1, 1, 0.99f, 0.95f)]
    [TestCase(6, 37, 1f, 0.95f)]
    [TestCase(6, 37, 0f, 1f)]
    [TestCase(6, 37, 0.9f, 0f)]
    public void GaeMatchesCpu(int batch, int steps, float gamma, float lambda)
    {
        var rng = new Random(batch + steps);
        int n = batch * steps;
        var r = Normal(rng, n, 0.2f);
        var v = Normal(rng, n);
        var mask = Mask(rng, batch, steps);
        var adv = new float[n];
        var ret = new float[n];
        Gae.Compute(r, v, mask, adv, ret, batch, steps, gamma, lambda);
        var a = Up(new float[n]);
        var rt = Up(new float[n]);
        kernels.Gae(Up(r), Up(PoisonMasked(v, mask)), Up(mask), a, rt, batch, steps, gamma, lambda);
        AssertClose(ToDouble(adv), Down(a), 1e-5, 1e-5, "advantages");
        AssertClose(ToDouble(ret), Down(rt), 1e-5, 1e-5, "returns");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void WhitenMatchesCpu(bool shiftMean)
    {
        var rng = new Random(7);
        var x = Normal(rng, 6 * 37, 2f).Select(e => e + 3f).ToArray();
        var mask = Mask(rng, 6, 37);
        var cpu = new float[x.Length];
        var cm = MaskedWhitening.Whiten(x, mask, cpu, shiftMean);
        var d = Up(new float[x.Length]);
        var dm = kernels.Whiten(Up(PoisonMasked(x, mask)), Up(mask), d, shiftMean);
        Assert.That(dm.Count, Is.EqualTo(cm.Count));
        AssertClose(cm.Mean, dm.Mean, 1e-6, 1e-7, "mean");
        AssertClose(cm.Variance, dm.Variance, 1e-6, 1e-7, "variance");
        AssertClose(ToDouble(cpu), Down(d), 1e-5, 1e-6, "whitened");
    }

    [Test]
    public void ReductionsAreDeterministic()
    {
        var rng = new Random(5);
        var nw = Up(Normal(rng, 500));
        var old = Up(Normal(rng, 500));
        var adv = Up(Normal(rng, 500));
        var mask = Up(Mask(rng, 10, 50));
        var g1 = Up(new float[500]);
        var g2 = Up(new float[500]);
        var a = kernels.PolicyLoss(nw, old, adv, mask, g1, 10, 50, 0.2f);
        var b = kernels.PolicyLoss(nw, old, adv, mask, g2, 10, 50, 0.2f);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(Down(g2), Is.EqualTo(Down(g1)));
        Assert.That(kernels.Moments(nw, mask), Is.EqualTo(kernels.Moments(nw, mask)));
    }

    [Test]
    public void RejectsBadArguments()
    {
        var x = Up(new float[12]);
        var ones = Up(Enumerable.Repeat(1f, 12).ToArray());
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => kernels.Gae(x, x, ones, x, x, 3, 4, 0.9f, 1.2f));
        Assert.That(ex!.ParamName, Is.EqualTo("lambda"));
        var ex2 = Assert.Throws<ArgumentException>(() => kernels.PolicyLoss(x, x, x, ones, Up(new float[11]), 3, 4, 0.2f));
        Assert.That(ex2!.ParamName, Is.EqualTo("gradNewLogProbs"));
        var bad = new float[12];
        bad[10] = float.NaN;
        var ex3 = Assert.Throws<ArgumentException>(() => kernels.ValueLoss(x, Up(bad), x, ones, Up(new float[12]), 3, 4, 0.2f));
        Assert.That(ex3!.ParamName, Is.EqualTo("oldValues"));
        Assert.That(ex3.Message, Does.Contain("oldValues[10]").And.Contain("row 2, step 2"));
    }
}
