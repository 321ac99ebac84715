using Rlhf.Model;
using static Rlhf.Tests.Model.FiniteDifference;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

/// <summary>Each layer's backward against central finite differences of L = Σ y·r (r random).</summary>
public class LayerGradientTests
{
    [Test]
    public void LayerNormBackward()
    {
        const int n = 3, c = 37; // spans vector widths and a scalar tail
        var x = RandomFloats(n * c, 1, 2f);
        var w = RandomFloats(c, 2);
        var b = RandomFloats(c, 3);
        var r = RandomFloats(n * c, 4);
        var y = new float[n * c];
        var mean = new float[n];
        var rstd = new float[n];
        double Loss()
        {
            LayerNorm.Forward(x, w, b, y, mean, rstd, n, c, 1e-5f);
            return Dot(y, r);
        }

        Loss();
        var dx = new float[n * c];
        var dw = new float[c];
        var db = new float[c];
        LayerNorm.Backward(r, x, w, mean, rstd, dx, dw, db, n, c);
        Check(x, dx, Loss, "dx");
        Check(w, dw, Loss, "dw");
        Check(b, db, Loss, "db");
    }

    [Test]
    public void RmsNormBackward()
    {
        const int n = 3, c = 35;
        var x = RandomFloats(n * c, 5, 1.5f);
        var w = RandomFloats(c, 6);
        var r = RandomFloats(n * c, 7);
        var y = new float[n * c];
        var rstd = new float[n];
        double Loss()
        {
            RmsNorm.Forward(x, w, y, rstd, n, c, 1e-5f);
            return Dot(y, r);
        }

        Loss();
        var dx = new float[n * c];
        var dw = new float[c];
        RmsNorm.Backward(r, x, w, rstd, dx, dw, n, c);
        Check(x, dx, Loss, "dx");
        Check(w, dw, Loss, "dw");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LinearBackwardBothLayouts(bool conv1D)
    {
        const int n = 4, inDim = 5, outDim = 3;
        var x = RandomFloats(n * inDim, 8);
        var w = RandomFloats(inDim * outDim, 9);
        var b = RandomFloats(outDim, 10);
        var r = RandomFloats(n * outDim, 11);
        var y = new float[n * outDim];
        double Loss()
        {
            LinearLayer.Forward(x, w, b, y, n, inDim, outDim, conv1D);
            return Dot(y, r);
        }

        Loss();
        var dx = new float[n * inDim];
        var dw = new float[inDim * outDim];
        var db = new float[outDim];
        LinearLayer.Backward(r, x, w, dx, dw, db, n, inDim, outDim, conv1D);
        Check(x, dx, Loss, "dx");
        Check(w, dw, Loss, "dw");
        Check(b, db, Loss, "db");

        // Layout: element (k, o) of the logical [in, out] map.
        int k = 2, o = 1;
        Array.Clear(x);
        x[k] = 1f; // row 0 = e_k
        LinearLayer.Forward(x, w, default, y, n, inDim, outDim, conv1D);
        Assert.That(y[o], Is.EqualTo(conv1D ? w[k * outDim + o] : w[o * inDim + k]));
    }

    [Test]
    public void GeluTanhBackwardAndValue()
    {
        const int n = 300; // two 256-element blocks
        var x = RandomFloats(n, 12, 2f);
        var r = RandomFloats(n, 13);
        var y = new float[n];
        double Loss()
        {
            GeluTanh.Forward(x, y);
            return Dot(y, r);
        }

        Loss();
        var dx = new float[n];
        GeluTanh.Backward(x, r, dx);
        Check(x, dx, Loss, "dx", h: 1e-3);
        GeluTanh.Forward([1f], y);
        Assert.That(y[0], Is.EqualTo(0.8411920f).Within(1e-6)); // torch.nn.functional.gelu(1, approximate='tanh')
        // The tanh formula in double, across the range where the exp(−2u) form could lose accuracy (x ≪ 0, x ≫ 0).
        var xs = Enumerable.Range(0, 161).Select(i => (i - 80) * 0.15f).ToArray();
        var ys = new float[xs.Length];
        GeluTanh.Forward(xs, ys);
        for (int i = 0; i < xs.Length; i++)
        {
            double v = xs[i];
            double expected = 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            Assert.That(ys[i], Is.EqualTo(expected).Within(2e-6 * Math.Max(1, Math.Abs(expected)) + 1e-7), $"x = {v}");
        }
    }

    [Test]
    public void GeluTanhSplitOverThreadsGivesTheSerialBits()
    {
        const int n = 200_003, slice = 1000; // the whole call forks (n ≥ 2^17 with 2 threads); each slice runs serially
        var x = RandomFloats(n, 14, 3f);
        var dy = RandomFloats(n, 15);
        var y = new float[n];
        var dx = new float[n];
        var ys = new float[n];
        var dxs = new float[n];
        int saved = Rlhf.Kernels.KernelParallelism.MaxThreads;
        try
        {
            Rlhf.Kernels.KernelParallelism.MaxThreads = 2;
            GeluTanh.Forward(x, y);
            GeluTanh.Backward(x, dy, dx);
        }
        finally
        {
            Rlhf.Kernels.KernelParallelism.MaxThreads = saved;
        }

        for (int s = 0; s < n; s += slice)
        {
            int len = Math.Min(slice, n - s);
            GeluTanh.Forward(x.AsSpan(s, len), ys.AsSpan(s, len));
            GeluTanh.Backward(x.AsSpan(s, len), dy.AsSpan(s, len), dxs.AsSpan(s, len));
        }

        Assert.That(y, Is.EqualTo(ys));
        Assert.That(dx, Is.EqualTo(dxs));
    }

    [Test]
    public void SwiGluBackward()
    {
        const int n = 3, f = 21;
        var gu = RandomFloats(n * 2 * f, 14, 1.5f);
        var r = RandomFloats(n * f, 15);
        var y = new float[n * f];
        double Loss()
        {
            SwiGlu.Forward(gu, y, n, f);
            return Dot(y, r);
        }

        Loss();
        var d = new float[n * 2 * f];
        SwiGlu.Backward(gu, r, d, n, f);
        Check(gu, d, Loss, "dGateUp", h: 1e-3);
    }

    [Test]
    public void RopeInverseIsTheBackwardAndMatchesRotateHalf()
    {
        const int n = 3, heads = 2, hd = 4, stride = 11, off = 2;
        var rope = new Rope(hd, 8, 10000f);
        var pos = new[] { 0, 3, 7 };
        var x = RandomFloats(n * stride, 16);
        var r = RandomFloats(n * stride, 17);
        var y = new float[n * stride];
        double Loss()
        {
            x.CopyTo(y, 0);
            rope.Apply(y, stride, off, heads, pos, n, inverse: false);
            return Dot(y, r);
        }

        Loss();
        var dx = (float[])r.Clone();
        rope.Apply(dx, stride, off, heads, pos, n, inverse: true);
        Check(x, dx, Loss, "dx");

        // Row 1 (pos 3), head 0, pair i = 1: angle 3·10000^(−2/4) = 0.03.
        x.CopyTo(y, 0);
        rope.Apply(y, stride, off, heads, pos, n, inverse: false);
        int bas = 1 * stride + off;
        double ang = 3 * Math.Pow(10000, -0.5);
        Assert.That(y[bas + 1], Is.EqualTo(x[bas + 1] * Math.Cos(ang) - x[bas + 3] * Math.Sin(ang)).Within(1e-6));
        Assert.That(y[bas + 3], Is.EqualTo(x[bas + 3] * Math.Cos(ang) + x[bas + 1] * Math.Sin(ang)).Within(1e-6));
        Assert.That(y[0], Is.EqualTo(x[0]), "columns outside the heads are untouched");
    }

    [TestCase(2, 2)]
    [TestCase(4, 2)]
    [TestCase(4, 1)]
    public void CausalAttentionBackwardWithPaddingAndGroupedHeads(int heads, int kvHeads)
    {
        const int b = 2, t = 5, hd = 3;
        int qkvDim = (heads + 2 * kvHeads) * hd;
        var qkv = RandomFloats(b * t * qkvDim, 18);
        var mask = new float[] { 1, 1, 1, 1, 1, 0, 0, 1, 1, 1 };
        var r = RandomFloats(b * t * heads * hd, 19);
        var y = new float[b * t * heads * hd];
        var probs = new float[b * heads * t * t];
        double Loss()
        {
            CausalAttention.Forward(qkv, mask, y, probs, b, t, heads, kvHeads, hd);
            return Dot(y, r);
        }

        Loss();
        var d = new float[qkv.Length];
        CausalAttention.Backward(r, qkv, probs, d, new float[b * kvHeads * t], b, t, heads, kvHeads, hd);
        Check(qkv, d, Loss, "dQkv");
        for (int i = 0; i < y.Length; i++) Assert.That(float.IsFinite(y[i]), Is.True);
        // Padded query rows (row 1, t = 0, 1) output zeros; padded keys get no probability.
        for (int i = 0; i < 2 * heads * hd; i++) Assert.That(y[(1 * t) * heads * hd + i], Is.Zero);
        for (int h = 0; h < heads; h++)
        {
            for (int q = 0; q < t; q++)
            {
                Assert.That(probs[((1 * heads + h) * t + q) * t + 0], Is.Zero);
                Assert.That(probs[((1 * heads + h) * t + q) * t + 1], Is.Zero);
                for (int k = q + 1; k < t; k++) Assert.That(probs[((0 * heads + h) * t + q) * t + k], Is.Zero, "future key");
            }
        }
    }

    [Test]
    public void EmbeddingBackwardScattersIntoRows()
    {
        const int n = 4, d = 3, v = 5, ctx = 6;
        var tokens = new[] { 1, 3, 1, 4 };
        var pos = new[] { 0, 1, 2, 0 };
        var wte = RandomFloats(v * d, 20);
        var wpe = RandomFloats(ctx * d, 21);
        var r = RandomFloats(n * d, 22);
        var y = new float[n * d];
        double Loss()
        {
            Embedding.Forward(tokens, pos, wte, wpe, y, n, d, v);
            return Dot(y, r);
        }

        Loss();
        var dwte = new float[v * d];
        var dwpe = new float[ctx * d];
        Embedding.Backward(r, tokens, pos, dwte, dwpe, n, d);
        Check(wte, dwte, Loss, "dwte");
        Check(wpe, dwpe, Loss, "dwpe");
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Forward([5, 0, 0, 0], pos, wte, wpe, y, n, d, v));
    }

    [Test]
    public void PositionsFromMaskHandleLeftAndRightPadding()
    {
        var pos = new int[8];
        Embedding.PositionsFromMask([0, 0, 1, 1, 1, 1, 0, 0], pos, 2, 4);
        Assert.That(pos, Is.EqualTo(new[] { 0, 0, 0, 1, 0, 1, 1, 1 }));
    }

    [Test]
    public void CrossEntropyBackwardAndMasking()
    {
        const int n = 4, v = 6;
        var z = RandomFloats(n * v, 23, 3f);
        var targets = new[] { 2, 5, -1, 0 };
        var w = new float[] { 1, 1, 0, 1 };
        var d = new float[n * v];
        double Loss() => CausalLmLoss.Forward(z, targets, w, default, n, v);
        float loss = CausalLmLoss.Forward(z, targets, w, d, n, v);
        Check(z, d, Loss, "dlogits", h: 3e-2, tol: 5e-3);
        for (int j = 0; j < v; j++) Assert.That(d[2 * v + j], Is.Zero, "masked row gets no gradient");
        double expected = 0;
        foreach (int i in new[] { 0, 1, 3 })
        {
            double s = 0;
            for (int j = 0; j < v; j++) s += Math.Exp(z[i * v + j]);
            expected += Math.Log(s) - z[i * v + targets[i]];
        }

        Assert.That(loss, Is.EqualTo(expected / 3).Within(1e-5));
        // Large logits: the max shift keeps it finite.
        z[0] = 1e30f;
        Assert.That(float.IsFinite(CausalLmLoss.Forward(z, targets, w, d, n, v)), Is.True);
    }

    [Test]
    public void CrossEntropyOverManyRowsIsDeterministicAndThreadCountIndependent()
    {
        const int n = 64, v = 8192;
        var z = RandomFloats(n * v, 24, 2f);
        var targets = new int[n];
        var w = new float[n];
        for (int i = 0; i < n; i++)
        {
            targets[i] = (i * 977) % v;
            w[i] = i % 5 == 0 ? 0f : 1f;
        }

        var d1 = new float[n * v];
        var d2 = new float[n * v];
        float a = CausalLmLoss.Forward(z, targets, w, d1, n, v);
        float b = CausalLmLoss.Forward(z, targets, w, d2, n, v);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(d2.AsSpan().SequenceEqual(d1), Is.True);
        int saved = Rlhf.Kernels.KernelParallelism.MaxThreads;
        try
        {
            Rlhf.Kernels.KernelParallelism.MaxThreads = 1;
            float single = CausalLmLoss.Forward(z, targets, w, d2, n, v);
            Assert.That(single, Is.EqualTo(a).Within(1e-6 * Math.Abs(a)));
            Assert.That(d2.AsSpan().SequenceEqual(d1), Is.True, "each row's gradient is computed by one thread either way");
            Assert.That(CausalLmLoss.Forward(z, targets, w, default, n, v), Is.EqualTo(a).Within(1e-5 * Math.Abs(a)), "loss without gradient");
        }
        finally
        {
            Rlhf.Kernels.KernelParallelism.MaxThreads = saved;
        }
    }
}
