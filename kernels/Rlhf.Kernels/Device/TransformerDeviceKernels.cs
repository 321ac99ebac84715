using ILGPU;
using ILGPU.Runtime;
using B = Rlhf.Kernels.Device.LayerKernelBodies;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Host side of the transformer layer kernels on a <see cref="KernelDevice"/> (written for CUDA; ILGPU's CPU
/// accelerator in tests): norms, activations, residuals, biases, embeddings, RoPE and fused causal attention, each
/// with its backward, over dense row-major fp32 views shaped as the CPU layers in Rlhf.Model. Launches are
/// asynchronous on the accelerator's default stream. Shapes are checked here; token ids and positions must be
/// validated by the caller on the host (device code cannot throw).
/// </summary>
public sealed class TransformerDeviceKernels : IDisposable
{
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> layerNormForward;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> layerNormBackwardInput;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> rmsNormForward;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> rmsNormBackwardInput;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> geluForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> geluBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> swiGluForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> swiGluBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> add;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> addBias;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> columnPartials;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> columnFinish;
    private readonly Accelerator accelerator;
    private MemoryBuffer1D<float, Stride1D.Dense>? partials;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> embeddingForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int> embeddingBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int, int, float> rope;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape> attentionForward;
    private readonly int attentionGroup, rowGroup;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape> attentionDelta;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape> attentionBackwardQuery;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape> attentionBackwardKeyValue;

    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, DecodeAttentionKernelBodies.Shape> cacheAppend;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DecodeAttentionKernelBodies.Shape> decodeAttention;

    public TransformerDeviceKernels(KernelDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var a = device.Accelerator;
        accelerator = a;
        layerNormForward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(B.LayerNormForward);
        layerNormBackwardInput = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(B.LayerNormBackwardInput);
        rmsNormForward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(B.RmsNormForward);
        rmsNormBackwardInput = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(B.RmsNormBackwardInput);
        geluForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(B.GeluForward);
        geluBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(B.GeluBackward);
        swiGluForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(B.SwiGluForward);
        swiGluBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(B.SwiGluBackward);
        add = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(B.Add);
        addBias = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(B.AddBias);
        columnPartials = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(B.ColumnPartials);
        columnFinish = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(B.ColumnFinish);
        embeddingForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(B.EmbeddingForward);
        embeddingBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>(B.EmbeddingBackward);
        rope = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int, int, float>(B.Rope);
        attentionForward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape>(AttentionKernelBodies.Forward);
        rowGroup = 1;
        while (rowGroup * 2 <= Math.Min(B.MaxRowGroup, device.MaxGroupSize)) rowGroup *= 2;
        attentionGroup = 1;
        while (attentionGroup * 2 <= Math.Min(AttentionKernelBodies.Tile, device.MaxGroupSize)) attentionGroup *= 2;
        attentionDelta = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape>(AttentionKernelBodies.Delta);
        attentionBackwardQuery = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape>(AttentionKernelBodies.BackwardQuery);
        attentionBackwardKeyValue = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionKernelBodies.Shape>(AttentionKernelBodies.BackwardKeyValue);
        cacheAppend = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, DecodeAttentionKernelBodies.Shape>(DecodeAttentionKernelBodies.Append);
        decodeAttention = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DecodeAttentionKernelBodies.Shape>(DecodeAttentionKernelBodies.Forward);
    }

    /// <summary>x [n,c], w, b [c] → y [n,c], mean, rstd [n]; effectively y = (x − mean)·rstd·w + b (as <c>LayerNorm.Forward</c>). A NaN/±Inf in a row makes that row NaN.</summary>
    public void LayerNormForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, int n, int c, float eps)
    {
        Len(x, (long)n * c, nameof(x)); Len(y, (long)n * c, nameof(y)); Len(w, c, nameof(w)); Len(b, c, nameof(b)); Len(mean, n, nameof(mean)); Len(rstd, n, nameof(rstd));
        if (n > 0) layerNormForward(new KernelConfig(n, rowGroup), x, w, b, y, mean, rstd, c, eps);
    }

    /// <summary>dy [n,c] → dx [n,c] (added); dw, db [c] (added) when <paramref name="trainWeights"/>; as <c>LayerNorm.Backward</c>.</summary>
    public void LayerNormBackward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> db, int n, int c, bool trainWeights)
    {
        Len(dy, (long)n * c, nameof(dy)); Len(x, (long)n * c, nameof(x)); Len(dx, (long)n * c, nameof(dx)); Len(w, c, nameof(w)); Len(mean, n, nameof(mean)); Len(rstd, n, nameof(rstd));
        if (n == 0) return;
        layerNormBackwardInput(new KernelConfig(n, rowGroup), dy, x, w, mean, rstd, dx, c);
        if (!trainWeights) return;
        Len(dw, c, nameof(dw)); Len(db, c, nameof(db));
        ColumnSums(B.SumDyXhatAndDy, dy, x, mean, rstd, dw, db, n, c);
    }

    /// <summary>x [n,c], w [c] → y [n,c], rstd [n]; effectively y = x·w/√(mean(x²) + eps) (as <c>RmsNorm.Forward</c>).</summary>
    public void RmsNormForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> rstd, int n, int c, float eps)
    {
        Len(x, (long)n * c, nameof(x)); Len(y, (long)n * c, nameof(y)); Len(w, c, nameof(w)); Len(rstd, n, nameof(rstd));
        if (n > 0) rmsNormForward(new KernelConfig(n, rowGroup), x, w, y, rstd, c, eps);
    }

    /// <summary>dy [n,c] → dx [n,c] (added); dw [c] (added) when <paramref name="trainWeights"/>; as <c>RmsNorm.Backward</c>.</summary>
    public void RmsNormBackward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w, ArrayView<float> rstd, ArrayView<float> dx, ArrayView<float> dw, int n, int c, bool trainWeights)
    {
        Len(dy, (long)n * c, nameof(dy)); Len(x, (long)n * c, nameof(x)); Len(dx, (long)n * c, nameof(dx)); Len(w, c, nameof(w)); Len(rstd, n, nameof(rstd));
        if (n == 0) return;
        rmsNormBackwardInput(new KernelConfig(n, rowGroup), dy, x, w, rstd, dx, c);
        if (!trainWeights) return;
        Len(dw, c, nameof(dw));
        ColumnSums(B.SumDyXRstd, dy, x, rstd, rstd, dw, dw, n, c);
    }

    /// <summary>x → y: effectively y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))); NaN stays NaN.</summary>
    public void GeluForward(ArrayView<float> x, ArrayView<float> y)
    {
        Len(y, x.Length, nameof(y));
        if (x.Length > 0) geluForward(Count(x.Length, nameof(x)), x, y);
    }

    /// <summary>x, dy → dx (overwritten) = dy·gelu'(x).</summary>
    public void GeluBackward(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx)
    {
        Len(dy, x.Length, nameof(dy)); Len(dx, x.Length, nameof(dx));
        if (x.Length > 0) geluBackward(Count(x.Length, nameof(x)), x, dy, dx);
    }

    /// <summary>gateUp [n,2f] → y [n,f]: effectively y = g·σ(g)·u.</summary>
    public void SwiGluForward(ArrayView<float> gateUp, ArrayView<float> y, int n, int f)
    {
        Len(gateUp, 2L * n * f, nameof(gateUp)); Len(y, (long)n * f, nameof(y));
        if (y.Length > 0) swiGluForward(Count(y.Length, nameof(y)), gateUp, y, f);
    }

    /// <summary>gateUp [n,2f], dy [n,f] → dGateUp [n,2f] (overwritten).</summary>
    public void SwiGluBackward(ArrayView<float> gateUp, ArrayView<float> dy, ArrayView<float> dGateUp, int n, int f)
    {
        Len(gateUp, 2L * n * f, nameof(gateUp)); Len(dy, (long)n * f, nameof(dy)); Len(dGateUp, 2L * n * f, nameof(dGateUp));
        if (dy.Length > 0) swiGluBackward(Count(dy.Length, nameof(dy)), gateUp, dy, dGateUp, f);
    }

    /// <summary>c = a + b elementwise (c may alias a or b).</summary>
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        Len(b, a.Length, nameof(b)); Len(c, a.Length, nameof(c));
        if (a.Length > 0) add(Count(a.Length, nameof(a)), a, b, c);
    }

    /// <summary>y [n,out] += bias [out] per row.</summary>
    public void AddBias(ArrayView<float> y, ArrayView<float> bias, int n, int outDim)
    {
        Len(y, (long)n * outDim, nameof(y)); Len(bias, outDim, nameof(bias));
        if (y.Length > 0) addBias(Count(y.Length, nameof(y)), y, bias, outDim);
    }

    /// <summary>dy [n,out] → db [out] += Σ_i dy[i,:] (rows in order).</summary>
    public void BiasBackward(ArrayView<float> dy, ArrayView<float> db, int n, int outDim)
    {
        Len(dy, (long)n * outDim, nameof(dy)); Len(db, outDim, nameof(db));
        if (outDim > 0 && n > 0) ColumnSums(B.SumDy, dy, dy, db, db, db, db, n, outDim);
    }

    /// <summary>tokens, positions [n], wte [vocab,d], wpe [ctx,d] or empty → x [n,d] = wte[token] (+ wpe[pos]). Ids must be in range (checked on the host).</summary>
    public void EmbeddingForward(ArrayView<int> tokens, ArrayView<int> positions, ArrayView<float> wte, ArrayView<float> wpe, ArrayView<float> x, int n, int d)
    {
        Len(tokens, n, nameof(tokens)); Len(positions, n, nameof(positions)); Len(x, (long)n * d, nameof(x));
        if (x.Length > 0) embeddingForward(Count(x.Length, nameof(x)), tokens, positions, wte, wpe.Length > 0 ? wpe : wte, x, d, wpe.Length > 0 ? 1 : 0);
    }

    /// <summary>dx [n,d] → dwte[token] += dx, dwpe[pos] += dx (when dwpe is not empty), rows in order.</summary>
    public void EmbeddingBackward(ArrayView<float> dx, ArrayView<int> tokens, ArrayView<int> positions, ArrayView<float> dwte, ArrayView<float> dwpe, int n, int d)
    {
        Len(dx, (long)n * d, nameof(dx)); Len(tokens, n, nameof(tokens)); Len(positions, n, nameof(positions));
        if (d > 0 && n > 0) embeddingBackward(d, dx, tokens, positions, dwte, dwpe.Length > 0 ? dwpe : dwte, n, d, dwpe.Length > 0 ? 1 : 0);
    }

    /// <summary>
    /// x [n, rowStride] with <paramref name="heads"/> heads of <paramref name="headDim"/> from <paramref name="columnOffset"/>,
    /// positions [n], cos/sin tables [ctx, headDim/2] → rotated in place (rotate_half convention, as <c>Rope.Apply</c>);
    /// <paramref name="inverse"/> applies the transpose rotation.
    /// </summary>
    public void Rope(ArrayView<float> x, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin,
        int n, int rowStride, int columnOffset, int heads, int headDim, bool inverse)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "must be positive and even.");
        Len(x, (long)n * rowStride, nameof(x)); Len(positions, n, nameof(positions)); Len(sin, cos.Length, nameof(sin));
        if (columnOffset + heads * headDim > rowStride) throw new ArgumentException($"heads end at column {columnOffset + heads * headDim}, past rowStride {rowStride}.", nameof(heads));
        long count = (long)n * heads * (headDim / 2);
        if (count > 0) rope(Count(count, nameof(x)), x, positions, cos, sin, rowStride, columnOffset, heads, headDim, inverse ? -1f : 1f);
    }

    /// <summary>
    /// qkv [b,t,(h+2kv)·hd], mask [b,t] → output [b,t,h·hd], lse [b,h,t]: causal softmax attention with padding keys
    /// excluded (as <c>CausalAttention.Forward</c>; a query with no visible key outputs 0), computed with an online
    /// softmax; lse (log-sum-exp of each row's scaled scores, +∞ for no visible key) replaces the probability matrix.
    /// </summary>
    public void AttentionForward(ArrayView<float> qkv, ArrayView<float> mask, ArrayView<float> output, ArrayView<float> lse, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        var s = AttentionShape(qkv, mask, output, lse, batch, seq, heads, kvHeads, headDim);
        long groups = (long)batch * heads * ((seq + attentionGroup - 1) / attentionGroup);
        if (groups > 0) attentionForward(new KernelConfig(Count(groups, nameof(lse)), attentionGroup), qkv, mask, output, lse, s);
    }

    /// <summary>
    /// dOutput [b,t,h·hd] with the forward's qkv, output and lse → dQkv [b,t,(h+2kv)·hd] (overwritten); delta [b,h,t]
    /// is scratch. Same gradient as <c>CausalAttention.Backward</c>, with probabilities recomputed from lse.
    /// </summary>
    public void AttentionBackward(ArrayView<float> dOutput, ArrayView<float> qkv, ArrayView<float> mask, ArrayView<float> output, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dQkv, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        var s = AttentionShape(qkv, mask, output, lse, batch, seq, heads, kvHeads, headDim);
        Len(dOutput, output.Length, nameof(dOutput)); Len(dQkv, qkv.Length, nameof(dQkv)); Len(delta, lse.Length, nameof(delta));
        long rows = (long)batch * heads * seq;
        if (rows == 0) return;
        attentionDelta(Count(rows, nameof(delta)), dOutput, output, delta, s);
        int blocks = (seq + attentionGroup - 1) / attentionGroup;
        attentionBackwardQuery(new KernelConfig(Count((long)batch * heads * blocks, nameof(dQkv)), attentionGroup), qkv, mask, dOutput, lse, delta, dQkv, s);
        attentionBackwardKeyValue(new KernelConfig(Count((long)batch * kvHeads * blocks, nameof(dQkv)), attentionGroup), qkv, mask, dOutput, lse, delta, dQkv, s);
    }

    /// <summary>
    /// Decoding over a KV cache: writes the new keys/values of qkv [b, tn, (h+2kv)·hd] into keys/values
    /// [b, kv, capacity, hd] at positions past..past+tn−1, then output [b, tn, h·hd] = attention of the new queries
    /// over keys j ≤ past + t with keyMask [b, capacity] = 1 (as <c>CachedAttention.Forward</c>; the caller sets
    /// the new positions' mask first). Online softmax, no score buffer.
    /// </summary>
    public void DecodeAttention(ArrayView<float> qkv, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> keyMask, ArrayView<float> output,
        int batch, int newTokens, int past, int capacity, int heads, int kvHeads, int headDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        ArgumentOutOfRangeException.ThrowIfNegative(past);
        if (heads % kvHeads != 0) throw new ArgumentException($"heads {heads} not divisible by kvHeads {kvHeads}.", nameof(kvHeads));
        if (past + newTokens > capacity) throw new ArgumentOutOfRangeException(nameof(newTokens), newTokens, $"past {past} + new tokens exceed capacity {capacity}.");
        long rows = (long)batch * newTokens;
        Len(qkv, rows * (heads + 2 * kvHeads) * headDim, nameof(qkv));
        Len(keys, (long)batch * kvHeads * capacity * headDim, nameof(keys));
        Len(values, keys.Length, nameof(values));
        Len(keyMask, (long)batch * capacity, nameof(keyMask));
        Len(output, rows * heads * headDim, nameof(output));
        if (rows == 0) return;
        var s = new DecodeAttentionKernelBodies.Shape { Tn = newTokens, Past = past, Cap = capacity, H = heads, Kv = kvHeads, Hd = headDim, Scale = 1f / MathF.Sqrt(headDim) };
        cacheAppend(Count(rows * kvHeads * headDim, nameof(keys)), qkv, keys, values, s);
        decodeAttention(Count(rows * heads, nameof(output)), qkv, keys, values, keyMask, output, s);
    }

    private static AttentionKernelBodies.Shape AttentionShape(ArrayView<float> qkv, ArrayView<float> mask, ArrayView<float> output, ArrayView<float> lse,
        int batch, int seq, int heads, int kvHeads, int headDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        if (heads % kvHeads != 0) throw new ArgumentException($"heads {heads} not divisible by kvHeads {kvHeads}.", nameof(kvHeads));
        long n = (long)batch * seq;
        Len(qkv, n * (heads + 2 * kvHeads) * headDim, nameof(qkv)); Len(mask, n, nameof(mask));
        Len(output, n * heads * headDim, nameof(output)); Len(lse, n * heads, nameof(lse));
        if (headDim > AttentionKernelBodies.MaxHeadDim)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"the fused attention supports head dimensions up to {AttentionKernelBodies.MaxHeadDim}.");
        return new AttentionKernelBodies.Shape { T = seq, H = heads, Kv = kvHeads, Hd = headDim, Scale = 1f / MathF.Sqrt(headDim) };
    }

    public void Dispose()
    {
        partials?.Dispose();
        partials = null;
    }

    /// <summary>Column sums of [n, c] in two passes: fixed chunks of rows in parallel, then the chunks in order per column.</summary>
    private void ColumnSums(int kind, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> outA, ArrayView<float> outB, int n, int c)
    {
        const int rowsPerChunk = 64;
        int chunks = (n + rowsPerChunk - 1) / rowsPerChunk;
        long need = 2L * chunks * c;
        if (partials is null || partials.Length < need)
        {
            // Launches queued on the stream may still read the old buffer.
            accelerator.Synchronize();
            partials?.Dispose();
            partials = accelerator.Allocate1D<float>(need);
        }

        var pa = partials.View.SubView(0, (long)chunks * c);
        var pb = partials.View.SubView((long)chunks * c, (long)chunks * c);
        columnPartials(Count((long)chunks * c, nameof(dy)), dy, x, mean, rstd, pa, pb, n, c, rowsPerChunk, kind);
        columnFinish(c, pa, pb, outA, outB, chunks, c, kind == B.SumDyXhatAndDy ? 1 : 0);
    }

    private static int Count(long n, string name) =>
        n <= int.MaxValue ? (int)n : throw new ArgumentException($"{name} needs {n} threads; at most {int.MaxValue} per launch.", name);

    private static void Len<T>(ArrayView<T> view, long expected, string name) where T : unmanaged
    {
        if (view.Length != expected) throw new ArgumentException($"{name} has {view.Length} elements, expected {expected}.", name);
    }
}
