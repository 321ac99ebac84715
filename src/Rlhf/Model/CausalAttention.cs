using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>
/// Causal multi-head self-attention with a key padding mask and grouped-query heads, reading q|k|v from the fused
/// projection output. Query head h uses key/value head h / (heads / kvHeads). Keys that are padding or in the
/// future get probability 0 (−∞ before the softmax); a query with no visible key (a left pad) outputs zeros.
/// Parallel over (batch, head) in the forward and (batch, kv head) in the backward, so results do not depend on
/// thread scheduling.
/// </summary>
public static unsafe class CausalAttention
{
    /// <summary>
    /// qkv [b,t,(h+2kv)·hd], mask [b,t] -> output [b,t,h·hd], probs [b,h,t,t] (kept for the backward).
    /// </summary>
    public static void Forward(ReadOnlySpan<float> qkv, ReadOnlySpan<float> mask, Span<float> output, Span<float> probs, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        Check(qkv, mask, output, probs, batch, seq, heads, kvHeads, headDim);
        fixed (float* q = qkv, m = mask, o = output, p = probs)
        {
            var job = new Job { Qkv = q, Mask = m, Out = o, Probs = p, B = batch, T = seq, H = heads, Kv = kvHeads, Hd = headDim };
            int units = batch * heads;
            Parallel.For(0, units, new ParallelOptions { MaxDegreeOfParallelism = KernelParallelism.ThreadsFor(units, 1) }, u => job.Forward(u));
        }
    }

    /// <summary>
    /// dOutput [b,t,h·hd], qkv, probs -> dQkv [b,t,(h+2kv)·hd] (overwritten). scratch needs b·kv·t floats.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs, Span<float> dQkv, Span<float> scratch, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        int stride = (heads + 2 * kvHeads) * headDim;
        if (dQkv.Length < batch * seq * stride) throw new ArgumentException($"dQkv has {dQkv.Length} elements, needs {batch * seq * stride}.", nameof(dQkv));
        if (dOutput.Length < batch * seq * heads * headDim) throw new ArgumentException($"dOutput has {dOutput.Length} elements, needs {batch * seq * heads * headDim}.", nameof(dOutput));
        if (scratch.Length < batch * kvHeads * seq) throw new ArgumentException($"scratch has {scratch.Length} elements, needs {batch * kvHeads * seq}.", nameof(scratch));
        dQkv[..(batch * seq * stride)].Clear();
        fixed (float* q = qkv, d = dOutput, p = probs, dq = dQkv, s = scratch)
        {
            var job = new Job { Qkv = q, DOut = d, Probs = p, DQkv = dq, Scratch = s, B = batch, T = seq, H = heads, Kv = kvHeads, Hd = headDim };
            int units = batch * kvHeads;
            Parallel.For(0, units, new ParallelOptions { MaxDegreeOfParallelism = KernelParallelism.ThreadsFor(units, 1) }, u => job.Backward(u));
        }
    }

    private static void Check(ReadOnlySpan<float> qkv, ReadOnlySpan<float> mask, Span<float> output, Span<float> probs, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        if (heads % kvHeads != 0) throw new ArgumentException($"heads {heads} not divisible by kvHeads {kvHeads}.", nameof(kvHeads));
        int stride = (heads + 2 * kvHeads) * headDim;
        if (qkv.Length < batch * seq * stride) throw new ArgumentException($"qkv has {qkv.Length} elements, needs {batch * seq * stride}.", nameof(qkv));
        if (mask.Length < batch * seq) throw new ArgumentException($"mask has {mask.Length} elements, needs {batch * seq}.", nameof(mask));
        if (output.Length < batch * seq * heads * headDim) throw new ArgumentException($"output has {output.Length} elements, needs {batch * seq * heads * headDim}.", nameof(output));
        if (probs.Length < batch * heads * seq * seq) throw new ArgumentException($"probs has {probs.Length} elements, needs {batch * heads * seq * seq}.", nameof(probs));
    }

    private struct Job
    {
        public float* Qkv, Mask, Out, Probs, DOut, DQkv, Scratch;
        public int B, T, H, Kv, Hd;

        public readonly void Forward(int unit)
        {
            int b = unit / H, h = unit % H, group = H / Kv, kvh = h / group;
            int stride = (H + 2 * Kv) * Hd, outStride = H * Hd;
            int kOff = H * Hd + kvh * Hd, vOff = (H + Kv) * Hd + kvh * Hd;
            float scale = 1f / MathF.Sqrt(Hd);
            for (int t = 0; t < T; t++)
            {
                var q = new ReadOnlySpan<float>(Qkv + (long)(b * T + t) * stride + h * Hd, Hd);
                var row = new Span<float>(Probs + ((long)(b * H + h) * T + t) * T, T);
                var o = new Span<float>(Out + (long)(b * T + t) * outStride + h * Hd, Hd);
                row.Clear();
                o.Clear();
                float max = float.NegativeInfinity;
                for (int j = 0; j <= t; j++)
                {
                    if (Mask[b * T + j] == 0f) continue;
                    float sc = scale * TensorPrimitives.Dot(q, new ReadOnlySpan<float>(Qkv + (long)(b * T + j) * stride + kOff, Hd));
                    row[j] = sc;
                    if (sc > max) max = sc;
                }

                if (float.IsNegativeInfinity(max)) continue; // no visible key: a padded query row, output stays 0
                double sum = 0;
                for (int j = 0; j <= t; j++)
                {
                    if (Mask[b * T + j] == 0f) continue;
                    float e = MathF.Exp(row[j] - max);
                    row[j] = e;
                    sum += e;
                }

                float inv = (float)(1.0 / sum);
                for (int j = 0; j <= t; j++)
                {
                    if (Mask[b * T + j] == 0f) continue;
                    row[j] *= inv;
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(Qkv + (long)(b * T + j) * stride + vOff, Hd), row[j], o, o);
                }
            }
        }

        public readonly void Backward(int unit)
        {
            int b = unit / Kv, kvh = unit % Kv, group = H / Kv;
            int stride = (H + 2 * Kv) * Hd, outStride = H * Hd;
            int kOff = H * Hd + kvh * Hd, vOff = (H + Kv) * Hd + kvh * Hd;
            float scale = 1f / MathF.Sqrt(Hd);
            var dp = new Span<float>(Scratch + (long)unit * T, T);
            for (int h = kvh * group; h < (kvh + 1) * group; h++)
            {
                for (int t = 0; t < T; t++)
                {
                    var row = new ReadOnlySpan<float>(Probs + ((long)(b * H + h) * T + t) * T, T);
                    var dout = new ReadOnlySpan<float>(DOut + (long)(b * T + t) * outStride + h * Hd, Hd);
                    var q = new ReadOnlySpan<float>(Qkv + (long)(b * T + t) * stride + h * Hd, Hd);
                    var dq = new Span<float>(DQkv + (long)(b * T + t) * stride + h * Hd, Hd);
                    double dot = 0;
                    for (int j = 0; j <= t; j++)
                    {
                        if (row[j] == 0f) continue;
                        long kv = (long)(b * T + j) * stride;
                        dp[j] = TensorPrimitives.Dot(dout, new ReadOnlySpan<float>(Qkv + kv + vOff, Hd));
                        dot += row[j] * dp[j];
                        var dv = new Span<float>(DQkv + kv + vOff, Hd);
                        TensorPrimitives.MultiplyAdd(dout, row[j], dv, dv);
                    }

                    for (int j = 0; j <= t; j++)
                    {
                        if (row[j] == 0f) continue;
                        long kv = (long)(b * T + j) * stride;
                        float ds = scale * row[j] * (dp[j] - (float)dot);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(Qkv + kv + kOff, Hd), ds, dq, dq);
                        var dk = new Span<float>(DQkv + kv + kOff, Hd);
                        TensorPrimitives.MultiplyAdd(q, ds, dk, dk);
                    }
                }
            }
        }
    }
}
