using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>k3 in float (series below |u| = ½, e^u − 1 − u above) against the double-precision value on both vector and scalar paths.</summary>
public class SampledK3AccuracyTests
{
    [Test]
    public void MatchesDoublePrecision_AcrossTheSwitchAndFarOut()
    {
        var u = new List<double> { 0, 1e-8, -1e-8, 1e-4, -1e-4, 0.4999, 0.5, 0.5001, -0.4999, -0.5, -0.5001, 1, -1, 5, -5, 20, -20, -80 };
        var rng = new Random(4);
        for (int i = 0; i < 200; i++) u.Add((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-6, 2)));
        int n = u.Count;
        float[] logp = new float[n], logq = new float[n], k3 = new float[n];
        for (int i = 0; i < n; i++)
        {
            logp[i] = -2f;
            logq[i] = (float)(-2 + u[i]);
        }

        KullbackLeibler.K3(logp, logq, k3);
        for (int i = 0; i < n; i++)
        {
            double x = (double)logq[i] - logp[i];
            double expected = Math.Abs(x) < 1e-3 ? x * x * (0.5 + x * (1.0 / 6 + x * (1.0 / 24 + x / 120))) : Math.Exp(x) - 1 - x;
            Assert.That(k3[i], Is.EqualTo(expected).Within(2e-6 * expected + 1e-30), $"u = {x}");
            Assert.That(k3[i], Is.GreaterThanOrEqualTo(0f), $"u = {x}");
        }
    }

    [Test]
    public void WholeVectorsOfSmallRatios_UseTheSeriesAlone()
    {
        int n = 64;
        float[] logp = new float[n], logq = new float[n], k3 = new float[n];
        for (int i = 0; i < n; i++)
        {
            logp[i] = -3f;
            logq[i] = -3f + 0.49f * MathF.Sin(i);
        }

        KullbackLeibler.K3(logp, logq, k3);
        for (int i = 0; i < n; i++)
        {
            double x = (double)logq[i] - logp[i];
            double expected = Math.Exp(x) - 1 - x;
            Assert.That(k3[i], Is.EqualTo(expected).Within(2e-6 * expected + 1e-12), $"u = {x}");
        }
    }

    [Test]
    public void SpecialValues_FollowIeeeRules()
    {
        float[] logp = [-1f, float.NaN, -1f], logq = [float.NegativeInfinity, -1f, -1f], k3 = new float[3];
        KullbackLeibler.K3(logp, logq, k3);
        Assert.That(k3[0], Is.EqualTo(float.PositiveInfinity));
        Assert.That(k3[1], Is.NaN);
        Assert.That(k3[2], Is.EqualTo(0f));
    }

    [Test]
    public void SameBitsWhereverTheBuffersLie_InPlaceToo([Values(16, 17, 31, 65, 100, 1001)] int n, [Values(false, true)] bool unrelated)
    {
        var rng = new Random(n);
        float[] logp = new float[n], logq = new float[n];
        for (int i = 0; i < n; i++)
        {
            logp[i] = -3f * (float)rng.NextDouble();
            // Mostly small log-ratios (the series path) with a few large ones (the exp path) in some vectors; or
            // unrelated log-probabilities, mostly on the exp path.
            logq[i] = unrelated
                ? -5f * (float)rng.NextDouble()
                : logp[i] + (float)(rng.NextDouble() < 0.05 ? 4 * (rng.NextDouble() - 0.5) : 0.2 * (rng.NextDouble() - 0.5));
        }

        var expected = new float[n];
        KullbackLeibler.K3(logp, logq, expected);
        for (int offset = 1; offset < 16; offset++)
        {
            var p = new float[n + 32];
            var q = new float[n + 32];
            var d = new float[n + 32];
            logp.CopyTo(p, offset);
            logq.CopyTo(q, 16 - offset);
            KullbackLeibler.K3(p.AsSpan(offset, n), q.AsSpan(16 - offset, n), d.AsSpan(offset + 3, n));
            Assert.That(d.AsSpan(offset + 3, n).ToArray(), Is.EqualTo(expected), $"offset {offset}");
        }

        // In place over either input: the same bits too (each element's value is its own, whichever vector computes it).
        var inPlace = (float[])logp.Clone();
        KullbackLeibler.K3(inPlace, logq, inPlace);
        Assert.That(inPlace, Is.EqualTo(expected), "in place over logProbs");
        var overReference = (float[])logq.Clone();
        KullbackLeibler.K3(logp, overReference, overReference);
        Assert.That(overReference, Is.EqualTo(expected), "in place over referenceLogProbs");
    }

    [Test]
    public void ShiftedOverlapIsRejected_ExactlyInPlaceIsNot()
    {
        // One element past the input, k2 and k3 read values they had already overwritten (k1 failed inside
        // TensorPrimitives without naming the argument); all three now reject it up front.
        var buffer = new float[33];
        var reference = new float[32];
        foreach (var estimator in new Action<float[]>[]
        {
            b => KullbackLeibler.K1(b.AsSpan(0, 32), reference, b.AsSpan(1, 32)),
            b => KullbackLeibler.K2(b.AsSpan(0, 32), reference, b.AsSpan(1, 32)),
            b => KullbackLeibler.K3(b.AsSpan(0, 32), reference, b.AsSpan(1, 32)),
        })
        {
            var e = Assert.Throws<ArgumentException>(() => estimator(buffer))!;
            Assert.That(e.ParamName, Is.EqualTo("destination"));
            Assert.That(e.Message, Does.Contain("logProbs"));
        }

        var inPlace = new float[32];
        Assert.DoesNotThrow(() => KullbackLeibler.K2(inPlace, reference, inPlace));
    }
}
