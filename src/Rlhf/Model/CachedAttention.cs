using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>
/// Attention of new queries over a KV cache (inference only): the query at new step t of a chunk that starts at
/// cache position <c>past</c> sees keys j ≤ past + t whose key mask is 1. Same masking rules as
/// <see cref="CausalAttention"/>: no visible key gives a zero output.
/// </summary>
public static unsafe class CachedAttention
{
    /// <summary>
    /// q from qkv [b, tn, (h+2kv)·hd], keys/values [b, kv, cap, hd], keyMask [b, cap] -> output [b, tn, h·hd];
    /// scores is scratch of b·h·cap floats.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> qkv, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<float> keyMask,
        Span<float> output, Span<float> scores, int batch, int newTokens, int past, int capacity, int heads, int kvHeads, int headDim)
    {
        if (heads % kvHeads != 0) throw new ArgumentException($"heads {heads} not divisible by kvHeads {kvHeads}.", nameof(kvHeads));
        if (past + newTokens > capacity) throw new ArgumentOutOfRangeException(nameof(newTokens), newTokens, $"past {past} + new tokens exceed capacity {capacity}.");
        if (qkv.Length < batch * newTokens * (heads + 2 * kvHeads) * headDim) throw new ArgumentException("qkv is too short.", nameof(qkv));
        if (keys.Length < batch * kvHeads * capacity * headDim) throw new ArgumentException("keys is too short.", nameof(keys));
        if (values.Length < batch * kvHeads * capacity * headDim) throw new ArgumentException("values is too short.", nameof(values));
        if (keyMask.Length < batch * capacity) throw new ArgumentException("keyMask is too short.", nameof(keyMask));
        if (output.Length < batch * newTokens * heads * headDim) throw new ArgumentException("output is too short.", nameof(output));
        if (scores.Length < batch * heads * capacity) throw new ArgumentException("scores is too short.", nameof(scores));
        fixed (float* q = qkv, k = keys, v = values, m = keyMask, o = output, s = scores)
        {
            var job = new Job { Qkv = q, K = k, V = v, Mask = m, Out = o, Scores = s, B = batch, Tn = newTokens, Past = past, Cap = capacity, H = heads, Kv = kvHeads, Hd = headDim };
            int units = batch * heads;
            // A decode step at batch 1 is ~10⁴ multiply-adds per layer: less than a fork/join costs.
            int threads = KernelParallelism.ThreadsFor((long)units * (past + newTokens) * newTokens * headDim, 1 << 16);
            if (threads <= 1)
            {
                for (int u = 0; u < units; u++) job.Run(u);
            }
            else
            {
                Parallel.For(0, units, new ParallelOptions { MaxDegreeOfParallelism = threads }, u => job.Run(u));
            }
        }
    }

    private struct Job
    {
        public float* Qkv, K, V, Mask, Out, Scores;
        public int B, Tn, Past, Cap, H, Kv, Hd;

        public readonly void Run(int unit)
        {
            int b = unit / H, h = unit % H, kvh = h / (H / Kv);
            int stride = (H + 2 * Kv) * Hd;
            float scale = 1f / MathF.Sqrt(Hd);
            float* kBase = K + (long)(b * Kv + kvh) * Cap * Hd;
            float* vBase = V + (long)(b * Kv + kvh) * Cap * Hd;
            var row = new Span<float>(Scores + (long)unit * Cap, Cap);
            for (int t = 0; t < Tn; t++)
            {
                var q = new ReadOnlySpan<float>(Qkv + (long)(b * Tn + t) * stride + h * Hd, Hd);
                var o = new Span<float>(Out + (long)(b * Tn + t) * H * Hd + h * Hd, Hd);
                o.Clear();
                int visible = Past + t;
                float max = float.NegativeInfinity;
                for (int j = 0; j <= visible; j++)
                {
                    if (Mask[b * Cap + j] == 0f) continue;
                    float sc = scale * TensorPrimitives.Dot(q, new ReadOnlySpan<float>(kBase + (long)j * Hd, Hd));
                    row[j] = sc;
                    if (sc > max) max = sc;
                }

                if (float.IsNegativeInfinity(max)) continue;
                double sum = 0;
                for (int j = 0; j <= visible; j++)
                {
                    if (Mask[b * Cap + j] == 0f) continue;
                    float e = MathF.Exp(row[j] - max);
                    row[j] = e;
                    sum += e;
                }

                float inv = (float)(1.0 / sum);
                for (int j = 0; j <= visible; j++)
                {
                    if (Mask[b * Cap + j] == 0f) continue;
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(vBase + (long)j * Hd, Hd), row[j] * inv, o, o);
                }
            }
        }
    }
}
