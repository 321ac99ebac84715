using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Tests.Cuda;

[NonParallelizable]
public class AttentionKernelTests : DeviceTestBase
{
    private TransformerDeviceKernels k = null!;

    protected override void OnDevice() => k = new TransformerDeviceKernels(Device);

    // Row 0: left padding (two queries see no key); row 1: right padding; GQA 4 query heads over 2 kv heads.
    [TestCase(4, 2)]
    [TestCase(2, 2)]
    [TestCase(4, 1)]
    public void ForwardAndBackwardMatchTheCpuAttention(int heads, int kvHeads)
    {
        float[] mask = [0, 0, 1, 1, 1, 1, 1, 1, 0, 0];
        Compare(heads, kvHeads, 2, 5, 4, mask);
    }

    // Longer than a tile (16 keys on the CPU accelerator): several query blocks and key tiles, with padding keys
    // inside a tile and a whole left-padded tile.
    [Test]
    public void SpansSeveralTilesAndQueryBlocks()
    {
        const int seq = 37;
        var mask = new float[2 * seq];
        for (int t = 0; t < seq; t++)
        {
            mask[t] = t >= 17 ? 1f : 0f;
            mask[seq + t] = t % 7 == 3 || t > 33 ? 0f : 1f;
        }

        Compare(2, 1, 2, seq, 8, mask);
    }

    private void Compare(int heads, int kvHeads, int batch, int seq, int hd, float[] mask)
    {
        int stride = (heads + 2 * kvHeads) * hd, n = batch * seq;
        var qkv = Random(n * stride, 61, 1.5f);
        var dOut = Random(n * heads * hd, 62);
        float[] output = new float[n * heads * hd], probs = new float[batch * heads * seq * seq];
        CausalAttention.Forward(qkv, mask, output, probs, batch, seq, heads, kvHeads, hd);
        var dQkv = new float[n * stride];
        CausalAttention.Backward(dOut, qkv, probs, dQkv, new float[batch * kvHeads * seq], batch, seq, heads, kvHeads, hd);

        var qd = Up(qkv);
        var md = Up(mask);
        var od = Up(new float[n * heads * hd]);
        var lse = Up(new float[n * heads]);
        k.AttentionForward(qd, md, od, lse, batch, seq, heads, kvHeads, hd);
        var dqd = Up(Random(n * stride, 63)); // overwritten
        k.AttentionBackward(Up(dOut), qd, md, od, lse, Up(new float[n * heads]), dqd, batch, seq, heads, kvHeads, hd);
        AssertClose(Down(od), output, 1e-5, "output");
        AssertClose(Down(dqd), dQkv, 1e-5, "dQkv");
        var l = Down(lse);
        Assert.That(l[0], Is.EqualTo(float.PositiveInfinity), "a query with no visible key has lse +inf");
    }

    [Test]
    public void NaNQueryGivesANaNRowAndLse()
    {
        // A NaN in one query makes all its scores NaN: its output row and lse must be NaN (as the CPU attention's
        // row is), not 0 and +∞ as for a query that sees no key (CUDA's max.f32 drops NaN from the tile maximum).
        const int heads = 2, kvHeads = 1, seq = 5, hd = 4, stride = (heads + 2 * kvHeads) * hd;
        var qkv = Random(seq * stride, 64, 1f);
        qkv[3 * stride + 1] = float.NaN; // query 3, head 0
        var mask = new float[] { 1, 1, 1, 1, 1 };
        var od = Up(new float[seq * heads * hd]);
        var lse = Up(new float[seq * heads]);
        k.AttentionForward(Up(qkv), Up(mask), od, lse, 1, seq, heads, kvHeads, hd);
        var output = Down(od);
        var l = Down(lse);
        for (int d = 0; d < hd; d++) Assert.That(output[(3 * heads + 0) * hd + d], Is.NaN, $"output[3, 0, {d}]");
        Assert.That(l[0 * seq + 3], Is.NaN, "lse of query 3, head 0");
        Assert.That(float.IsFinite(l[0 * seq + 2]) && float.IsFinite(l[1 * seq + 3]), "the other rows stay finite");
    }

    [Test]
    public void RejectsIndivisibleHeads()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            k.AttentionForward(Up(new float[70]), Up(new float[2]), Up(new float[30]), Up(new float[6]), 1, 2, 3, 2, 5));
        Assert.That(ex!.ParamName, Is.EqualTo("kvHeads"));
    }
}

[NonParallelizable]
public class DecodeAttentionKernelTests : DeviceTestBase
{
    private TransformerDeviceKernels k = null!;

    protected override void OnDevice() => k = new TransformerDeviceKernels(Device);

    // A prefill of 3 then a one-token step, over a cache with a padded slot: the device cache and output match
    // the CPU's (which receives the keys/values the CPU model would have appended).
    [TestCase(4, 2)]
    [TestCase(2, 2)]
    public void AppendAndAttendMatchTheCpuCachedAttention(int heads, int kvHeads)
    {
        const int batch = 2, cap = 6, hd = 4;
        int stride = (heads + 2 * kvHeads) * hd;
        var keys = new float[batch * kvHeads * cap * hd];
        var values = new float[keys.Length];
        float[] keyMask = [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0];
        var kd = Up(new float[keys.Length]);
        var vd = Up(new float[keys.Length]);
        var md = Up(keyMask);
        int past = 0;
        foreach (int tn in new[] { 3, 1 })
        {
            var qkv = Random(batch * tn * stride, (ulong)(70 + tn), 1.5f);
            for (int b = 0; b < batch; b++)
            for (int t = 0; t < tn; t++)
            for (int g = 0; g < kvHeads; g++)
            for (int d = 0; d < hd; d++)
            {
                int src = (b * tn + t) * stride + g * hd + d, dst = ((b * kvHeads + g) * cap + past + t) * hd + d;
                keys[dst] = qkv[src + heads * hd];
                values[dst] = qkv[src + (heads + kvHeads) * hd];
            }

            var expected = new float[batch * tn * heads * hd];
            CachedAttention.Forward(qkv, keys, values, keyMask, expected, new float[batch * heads * cap], batch, tn, past, cap, heads, kvHeads, hd);
            var od = Up(new float[expected.Length]);
            k.DecodeAttention(Up(qkv), kd, vd, md, od, batch, tn, past, cap, heads, kvHeads, hd);
            AssertClose(Down(od), expected, 1e-5, $"output after {past + tn}");
            AssertClose(Down(kd), keys, 0, "keys");
            AssertClose(Down(vd), values, 0, "values");
            past += tn;
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => k.DecodeAttention(Up(new float[batch * 3 * stride]), kd, vd, md, Up(new float[batch * 3 * heads * hd]), batch, 3, 4, cap, heads, kvHeads, hd));
    }
}
