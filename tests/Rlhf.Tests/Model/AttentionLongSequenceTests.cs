using Rlhf.Model;
using static Rlhf.Tests.Model.FiniteDifference;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

/// <summary>
/// Causal attention at a sequence long enough (t = 21 > 8 rows) for its per-head products to take the blocked
/// GEMM path, with left padding and grouped heads: forward against a scalar double reference, backward against
/// central finite differences.
/// </summary>
[TestFixture]
public class AttentionLongSequenceTests
{
    private const int B = 2, T = 21, H = 4, Kv = 2, Hd = 16;

    private static float[] Mask()
    {
        var mask = new float[B * T];
        for (int i = 0; i < mask.Length; i++) mask[i] = 1f;
        for (int t = 0; t < 5; t++) mask[T + t] = 0f; // row 1: five left pads
        mask[9] = 0f;                                   // row 0: one padded key in the middle
        return mask;
    }

    [Test]
    public void ForwardMatchesScalarReference()
    {
        int stride = (H + 2 * Kv) * Hd;
        var qkv = RandomFloats(B * T * stride, 31);
        var mask = Mask();
        var y = new float[B * T * H * Hd];
        CausalAttention.Forward(qkv, mask, y, new float[B * H * T * T], B, T, H, Kv, Hd);
        for (int b = 0; b < B; b++)
        {
            for (int h = 0; h < H; h++)
            {
                int kvh = h / (H / Kv);
                for (int t = 0; t < T; t++)
                {
                    var s = new double[t + 1];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= t; j++)
                    {
                        if (mask[b * T + j] == 0f) continue;
                        double dot = 0;
                        for (int d = 0; d < Hd; d++) dot += (double)qkv[(b * T + t) * stride + h * Hd + d] * qkv[(b * T + j) * stride + (H + kvh) * Hd + d];
                        s[j] = dot / Math.Sqrt(Hd);
                        max = Math.Max(max, s[j]);
                    }

                    double sum = 0;
                    for (int j = 0; j <= t; j++) sum += mask[b * T + j] == 0f ? 0 : Math.Exp(s[j] - max);
                    for (int d = 0; d < Hd; d++)
                    {
                        double o = 0;
                        for (int j = 0; j <= t; j++)
                        {
                            if (mask[b * T + j] != 0f) o += Math.Exp(s[j] - max) / sum * qkv[(b * T + j) * stride + (H + Kv + kvh) * Hd + d];
                        }

                        float got = y[(b * T + t) * H * Hd + h * Hd + d];
                        if (double.IsNegativeInfinity(max)) Assert.That(got, Is.Zero, $"padded query b{b} t{t}");
                        else Assert.That(got, Is.EqualTo(o).Within(1e-5 + 1e-5 * Math.Abs(o)), $"b{b} h{h} t{t} d{d}");
                    }
                }
            }
        }
    }

    [Test]
    public void BackwardMatchesFiniteDifferences()
    {
        int stride = (H + 2 * Kv) * Hd;
        var qkv = RandomFloats(B * T * stride, 32);
        var mask = Mask();
        var r = RandomFloats(B * T * H * Hd, 33);
        var y = new float[B * T * H * Hd];
        var probs = new float[B * H * T * T];
        double Loss()
        {
            CausalAttention.Forward(qkv, mask, y, probs, B, T, H, Kv, Hd);
            return Dot(y, r);
        }

        Loss();
        var d = new float[qkv.Length];
        CausalAttention.Backward(r, qkv, probs, d, new float[B * Kv * T], B, T, H, Kv, Hd);
        // A spread of q, k and v entries of both rows (every 7th element covers each slot type and head).
        var indices = Enumerable.Range(0, qkv.Length / 7).Select(i => i * 7).ToArray();
        Check(qkv, d, Loss, "dQkv", indices: indices);
    }
}
