using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

public class ValueLossTests
{
    private static (float[] V, float[] Old, float[] Ret, float[] Mask) Inputs(int seed, int batch, int steps, float spread)
    {
        var rng = new Random(seed);
        var old = Normal(rng, batch * steps);
        var noise = Normal(rng, batch * steps, spread);
        var v = new float[old.Length];
        for (int i = 0; i < v.Length; i++) v[i] = old[i] + noise[i];
        return (v, old, Normal(rng, batch * steps), Mask(rng, batch, steps));
    }

    [TestCase(1, 1, 0.2f)]
    [TestCase(1, 37, 0.2f)]
    [TestCase(5, 1, 0.5f)]
    [TestCase(7, 53, 0.2f)]
    [TestCase(6, 100, 0f)]
    [TestCase(6, 100, float.PositiveInfinity)] // clipping off
    [TestCase(40, 700, 0.2f)]
    public void MatchesScalarReference(int batch, int steps, float eps)
    {
        var (v, old, ret, mask) = Inputs(batch * 100 + steps, batch, steps, 0.5f);
        var grad = new float[v.Length];
        var s = ValueLoss.Compute(PoisonMasked(v, mask), PoisonMasked(old, mask), PoisonMasked(ret, mask), mask, grad, batch, steps, eps, 0.3f);
        var r = PpoReference.Value(v, old, ret, mask, eps, 0.3);
        AssertClose(r.Loss, s.Loss, 1e-5, 1e-7, "loss");
        AssertClose(r.ClipFraction, s.ClipFraction, 1e-6, 1e-7, "clip fraction");
        AssertClose(r.Error, s.MeanSquaredError, 1e-5, 1e-7, "error");
        AssertClose(r.Grad, grad, 1e-5, 1e-9, "grad");
        if (float.IsPositiveInfinity(eps)) Assert.That(s.ClipFraction, Is.EqualTo(0f));
        if (eps == 0f && s.ValidCount > 0) Assert.That(s.ClipFraction, Is.GreaterThan(0.2f), "the case must exercise clipping");
    }

    [Test]
    public void UnclippedIsHalfMeanSquaredError()
    {
        var (v, old, ret, mask) = Inputs(9, 4, 33, 2f);
        var grad = new float[v.Length];
        var s = ValueLoss.Compute(v, old, ret, mask, grad, 4, 33, float.PositiveInfinity);
        Assert.That(s.Loss, Is.EqualTo(0.5f * s.MeanSquaredError).Within(1e-6f * s.Loss));
    }

    [Test]
    public void ClippingOffIgnoresInfiniteOldValues([Values(1, 41, 700)] int steps)
    {
        // 2 × 41 puts tokens on the vector path and in the scalar tail; 2 × 700 also gives chunks of whole vectors.
        const int batch = 2;
        var (v, old, ret, mask) = Inputs(31 + steps, batch, steps, 0.5f);
        var infinite = (float[])old.Clone();
        int n = batch * steps;
        for (int i = 0; i < n; i += 3)
        {
            infinite[i] = i % 2 == 0 ? float.PositiveInfinity : float.NegativeInfinity;
            if (i % 9 != 0) mask[i] = 1f; // most of them at valid tokens, some under the mask
        }

        mask[n - 1] = 1f;
        infinite[n - 1] = float.NegativeInfinity; // the last token: scalar tail when steps = 41
        var grad = new float[n];
        var s = ValueLoss.Compute(v, infinite, ret, mask, grad, batch, steps, float.PositiveInfinity, 0.7f);
        // The same bits as with any finite old values: clipping off means the old values are not used.
        var finiteGrad = new float[n];
        var finite = ValueLoss.Compute(v, new float[n], ret, mask, finiteGrad, batch, steps, float.PositiveInfinity, 0.7f);
        Assert.That(s, Is.EqualTo(finite));
        Assert.That(grad, Is.EqualTo(finiteGrad));
        Assert.That(s.ClipFraction, Is.EqualTo(0f));
        Assert.That(s.Loss, Is.EqualTo(0.5f * s.MeanSquaredError).Within(1e-6f * s.Loss));
        var r = PpoReference.Value(v, infinite, ret, mask, double.PositiveInfinity, 0.7);
        AssertClose(r.Loss, s.Loss, 1e-5, 1e-7, "loss");
        AssertClose(r.Error, s.MeanSquaredError, 1e-5, 1e-7, "error");
        AssertClose(r.Grad, grad, 1e-5, 1e-9, "grad");
    }

    [Test]
    public void ClippingOffStillRejectsANaNOldValue([Values(20, 81)] int index)
    {
        // 20: the vector path; 81: the scalar tail of 2 × 41 tokens.
        const int batch = 2, steps = 41;
        var (v, old, ret, _) = Inputs(23, batch, steps, 0.5f);
        var mask = Enumerable.Repeat(1f, batch * steps).ToArray();
        old[3] = float.PositiveInfinity;
        old[index] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() =>
            ValueLoss.Compute(v, old, ret, mask, new float[v.Length], batch, steps, float.PositiveInfinity));
        Assert.That(ex!.ParamName, Is.EqualTo("oldValues"));
        Assert.That(ex.Message, Does.Contain($"oldValues[{index}]").And.Contain($"row {index / steps}, step {index % steps}"));
    }

    [Test]
    public void GradientMatchesCentralDifferences([Values(0.2f, float.PositiveInfinity)] float eps)
    {
        const int batch = 3, steps = 21;
        const float h = 1e-2f;
        var (v, old, ret, mask) = Inputs(13, batch, steps, 0.5f);
        var grad = new float[v.Length];
        var scratch = new float[v.Length];
        ValueLoss.Compute(v, old, ret, mask, grad, batch, steps, eps);
        int checkedCount = 0;
        for (int i = 0; i < v.Length; i++)
        {
            if (mask[i] != 0 && Branch(v[i] + h, old[i], ret[i], eps) != Branch(v[i] - h, old[i], ret[i], eps)) continue;
            float keep = v[i];
            v[i] = keep + h;
            double up = ValueLoss.Compute(v, old, ret, mask, scratch, batch, steps, eps).Loss;
            v[i] = keep - h;
            double down = ValueLoss.Compute(v, old, ret, mask, scratch, batch, steps, eps).Loss;
            v[i] = keep;
            double fd = (up - down) / (2.0 * h);
            Assert.That(grad[i], Is.EqualTo(fd).Within(2e-3 * Math.Abs(fd) + 2e-6), $"d loss / d v[{i}]");
            checkedCount++;
        }

        Assert.That(checkedCount, Is.GreaterThan(v.Length * 3 / 4));
    }

    private static int Branch(float v, float old, float ret, float eps)
    {
        double vc = Math.Min(Math.Max(v, (double)old - eps), (double)old + eps);
        int region = v < old - eps ? 0 : v > old + eps ? 2 : 1;
        double l1 = (v - (double)ret) * (v - (double)ret), l2 = (vc - ret) * (vc - ret);
        return region * 2 + (l1 >= l2 ? 1 : 0);
    }

    [Test]
    public void RejectsBadArguments()
    {
        var (v, old, ret, mask) = Inputs(1, 2, 8, 1f);
        var grad = new float[16];
        var ex = Assert.Throws<ArgumentException>(() => ValueLoss.Compute(v, old, ret, mask, grad.AsSpan(0, 15), 2, 8, 0.2f));
        Assert.That(ex!.ParamName, Is.EqualTo("gradValues"));
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => ValueLoss.Compute(v, old, ret, mask, grad, 2, 8, float.NaN));
        Assert.That(ex2!.ParamName, Is.EqualTo("clipRange"));
        mask.AsSpan().Fill(1f);
        ret[5] = float.NaN;
        var ex3 = Assert.Throws<ArgumentException>(() => ValueLoss.Compute(v, old, ret, mask, grad, 2, 8, 0.2f));
        Assert.That(ex3!.ParamName, Is.EqualTo("returns"));
        Assert.That(ex3.Message, Does.Contain("returns[5]").And.Contain("row 0, step 5"));
    }

    [Test]
    public void NaNAtAValidTokenThrowsOnTheVectorPath([Values(0, 1, 2)] int which, [Values(0.2f, float.PositiveInfinity)] float eps)
    {
        const int batch = 2, steps = 40;
        var (v, old, ret, _) = Inputs(22, batch, steps, 0.5f);
        var mask = Enumerable.Repeat(1f, batch * steps).ToArray();
        var inputs = new[] { v, old, ret };
        inputs[which][steps + 20] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() => ValueLoss.Compute(v, old, ret, mask, new float[v.Length], batch, steps, eps));
        Assert.That(ex!.ParamName, Is.EqualTo(new[] { "values", "oldValues", "returns" }[which]));
        Assert.That(ex.Message, Does.Contain($"[{steps + 20}]").And.Contain("row 1, step 20"));
    }
}
