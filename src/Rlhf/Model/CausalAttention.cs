using System.Buffers;
using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>
/// Causal multi-head self-attention with a key padding mask and grouped-query heads, reading q|k|v from the fused
/// projection output. Query head h uses key/value head h / (heads / kvHeads). Keys that are padding or in the
/// future get probability 0 (−∞ before the softmax); a query with no visible key (a left pad) outputs zeros.
/// Per (batch, head) the products are dense GEMMs on gathered [t, hd] copies of q, k, v (S = (q/√hd)·kᵀ, O = P·v;
/// backward dP = dO·vᵀ, dv = Pᵀ·dO, dq = dS·k, dk = dSᵀ·q): the full square S costs twice the causal FLOPs but
/// runs at GEMM speed, ~10× the per-pair dot products it replaces. Parallel over (batch, head) in the forward and
/// (batch, kv head) in the backward, each GEMM on its worker's thread, so results do not depend on scheduling.
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
    /// dOutput [b,t,h·hd], qkv, probs -> dQkv [b,t,(h+2kv)·hd] (overwritten). scratch (b·kv·t floats) is no longer
    /// used: each worker rents its own [t, hd] blocks.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs, Span<float> dQkv, Span<float> scratch, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        int stride = (heads + 2 * kvHeads) * headDim;
        if (dQkv.Length < batch * seq * stride) throw new ArgumentException($"dQkv has {dQkv.Length} elements, needs {batch * seq * stride}.", nameof(dQkv));
        if (dOutput.Length < batch * seq * heads * headDim) throw new ArgumentException($"dOutput has {dOutput.Length} elements, needs {batch * seq * heads * headDim}.", nameof(dOutput));
        if (scratch.Length < batch * kvHeads * seq) throw new ArgumentException($"scratch has {scratch.Length} elements, needs {batch * kvHeads * seq}.", nameof(scratch));
        fixed (float* q = qkv, d = dOutput, p = probs, dq = dQkv)
        {
            var job = new Job { Qkv = q, DOut = d, Probs = p, DQkv = dq, B = batch, T = seq, H = heads, Kv = kvHeads, Hd = headDim };
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
        public float* Qkv, Mask, Out, Probs, DOut, DQkv;
        public int B, T, H, Kv, Hd;

        public readonly void Forward(int unit)
        {
            int b = unit / H, h = unit % H, group = H / Kv, kvh = h / group;
            int stride = (H + 2 * Kv) * Hd, outStride = H * Hd, th = T * Hd;
            int kOff = H * Hd + kvh * Hd, vOff = (H + Kv) * Hd + kvh * Hd;
            float scale = 1f / MathF.Sqrt(Hd);
            float[] rented = ArrayPool<float>.Shared.Rent(4 * th + T);
            try
            {
                var q = rented.AsSpan(0, th);
                var k = rented.AsSpan(th, th);
                var v = rented.AsSpan(2 * th, th);
                var o = rented.AsSpan(3 * th, th);
                var bias = rented.AsSpan(4 * th, T);
                float* rows = Qkv + (long)b * T * stride;
                for (int t = 0; t < T; t++)
                {
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(rows + (long)t * stride + h * Hd, Hd), scale, q.Slice(t * Hd, Hd));
                    new ReadOnlySpan<float>(rows + (long)t * stride + kOff, Hd).CopyTo(k.Slice(t * Hd, Hd));
                    new ReadOnlySpan<float>(rows + (long)t * stride + vOff, Hd).CopyTo(v.Slice(t * Hd, Hd));
                    bias[t] = Mask[b * T + t] == 0f ? float.NegativeInfinity : 0f;
                }

                var p = new Span<float>(Probs + (long)(b * H + h) * T * T, T * T);
                Gemm.MultiplyOnThisThread(q, k, p, T, T, Hd, transposeB: true);
                for (int t = 0; t < T; t++)
                {
                    var row = p.Slice(t * T, T);
                    var seen = row[..(t + 1)];
                    row[(t + 1)..].Clear();
                    TensorPrimitives.Add(seen, bias[..(t + 1)], seen);
                    float max = TensorPrimitives.Max(seen);
                    if (float.IsNegativeInfinity(max))
                    {
                        seen.Clear(); // no visible key: a padded query row, output stays 0
                        continue;
                    }

                    TensorPrimitives.Subtract(seen, max, seen);
                    TensorPrimitives.Exp(seen, seen);
                    TensorPrimitives.Multiply(seen, 1f / TensorPrimitives.Sum(seen), seen);
                }

                Gemm.MultiplyOnThisThread(p, v, o, T, Hd, T);
                for (int t = 0; t < T; t++) o.Slice(t * Hd, Hd).CopyTo(new Span<float>(Out + (long)(b * T + t) * outStride + h * Hd, Hd));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }

        public readonly void Backward(int unit)
        {
            int b = unit / Kv, kvh = unit % Kv, group = H / Kv;
            int stride = (H + 2 * Kv) * Hd, outStride = H * Hd, th = T * Hd;
            int kOff = H * Hd + kvh * Hd, vOff = (H + Kv) * Hd + kvh * Hd;
            float scale = 1f / MathF.Sqrt(Hd);
            float[] rented = ArrayPool<float>.Shared.Rent(7 * th + T * T);
            try
            {
                var k = rented.AsSpan(0, th);
                var v = rented.AsSpan(th, th);
                var q = rented.AsSpan(2 * th, th);
                var dout = rented.AsSpan(3 * th, th);
                var dq = rented.AsSpan(4 * th, th);
                var dk = rented.AsSpan(5 * th, th);
                var dv = rented.AsSpan(6 * th, th);
                var ds = rented.AsSpan(7 * th, T * T);
                float* rows = Qkv + (long)b * T * stride;
                float* drows = DQkv + (long)b * T * stride;
                for (int t = 0; t < T; t++)
                {
                    new ReadOnlySpan<float>(rows + (long)t * stride + kOff, Hd).CopyTo(k.Slice(t * Hd, Hd));
                    new ReadOnlySpan<float>(rows + (long)t * stride + vOff, Hd).CopyTo(v.Slice(t * Hd, Hd));
                }

                dk.Clear();
                dv.Clear();
                for (int h = kvh * group; h < (kvh + 1) * group; h++)
                {
                    for (int t = 0; t < T; t++)
                    {
                        new ReadOnlySpan<float>(rows + (long)t * stride + h * Hd, Hd).CopyTo(q.Slice(t * Hd, Hd));
                        new ReadOnlySpan<float>(DOut + (long)(b * T + t) * outStride + h * Hd, Hd).CopyTo(dout.Slice(t * Hd, Hd));
                    }

                    var p = new ReadOnlySpan<float>(Probs + (long)(b * H + h) * T * T, T * T);
                    Gemm.MultiplyOnThisThread(dout, v, ds, T, T, Hd, transposeB: true);          // dP = dO·vᵀ
                    Gemm.MultiplyOnThisThread(p, dout, dv, T, Hd, T, transposeA: true, accumulate: true); // dv += Pᵀ·dO
                    for (int t = 0; t < T; t++)
                    {
                        // dS = scale·P∘(dP − Σ_j P·dP); P is 0 on future and padded keys, so those stay 0.
                        var pr = p.Slice(t * T, T);
                        var dr = ds.Slice(t * T, T);
                        float dot = TensorPrimitives.Dot(pr, dr);
                        TensorPrimitives.Subtract(dr, dot, dr);
                        TensorPrimitives.Multiply(dr, pr, dr);
                        TensorPrimitives.Multiply(dr, scale, dr);
                    }

                    Gemm.MultiplyOnThisThread(ds, k, dq, T, Hd, T);                               // dq = dS·k
                    Gemm.MultiplyOnThisThread(ds, q, dk, T, Hd, T, transposeA: true, accumulate: true); // dk += dSᵀ·q
                    for (int t = 0; t < T; t++) dq.Slice(t * Hd, Hd).CopyTo(new Span<float>(drows + (long)t * stride + h * Hd, Hd));
                }

                for (int t = 0; t < T; t++)
                {
                    dk.Slice(t * Hd, Hd).CopyTo(new Span<float>(drows + (long)t * stride + kOff, Hd));
                    dv.Slice(t * Hd, Hd).CopyTo(new Span<float>(drows + (long)t * stride + vOff, Hd));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }
    }
}
