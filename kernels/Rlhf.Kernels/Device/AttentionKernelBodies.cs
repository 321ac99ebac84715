using ILGPU;
using ILGPU.Algorithms;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Fused causal attention with a key padding mask and grouped-query heads, reading q|k|v from the fused projection
/// output [b,t,(h+2kv)·hd], tiled as FlashAttention-2: a group owns a block of queries (or, for dK/dV, of keys) and
/// streams the other side through shared memory in tiles; the forward folds each tile into a running max and sum
/// (online softmax) and keeps only the per-row log-sum-exp, never a [t,t] probability matrix; the backward recomputes
/// probabilities from it. Every accumulator has one owning thread, summing tiles in order: no atomics, deterministic
/// bits. Query head h reads kv head h / (heads / kvHeads).
/// </summary>
internal static class AttentionKernelBodies
{
    /// <summary>Shape of one attention call.</summary>
    internal struct Shape
    {
        public int T, H, Kv, Hd;
        public float Scale;

        public readonly int Stride => (H + 2 * Kv) * Hd;
    }

    /// <summary>Keys per tile and most queries per group of <see cref="Forward"/> (the static shared memory is sized for it).</summary>
    public const int Tile = 32;

    /// <summary>Largest head dimension <see cref="Forward"/> supports (shared tiles are Tile × MaxHeadDim).</summary>
    public const int MaxHeadDim = 128;

    /// <summary>
    /// Grid: one group per (b, h, block of Group.DimX ≤ <see cref="Tile"/> consecutive queries); thread = query t.
    /// The group streams the keys in tiles of Group.DimX rows staged in shared memory (each key row read once per
    /// group, not once per query), scores a tile, then folds it into the running max/sum and rescales the output
    /// row once per tile (FlashAttention-2's forward). Writes out [b,t,h·hd] and lse [b,h,t] (+∞ for a query that
    /// sees no key: its output is 0 and every recomputed probability exp(s − ∞) is 0).
    /// </summary>
    public static void Forward(ArrayView<float> qkv, ArrayView<float> mask, ArrayView<float> output, ArrayView<float> lse, Shape s)
    {
        var kTile = SharedMemory.Allocate<float>(Tile * MaxHeadDim);
        var vTile = SharedMemory.Allocate<float>(Tile * MaxHeadDim);
        var scores = SharedMemory.Allocate<float>(Tile * Tile);
        int g = Group.DimX, lane = Group.IdxX, blocks = (s.T + g - 1) / g;
        int blk = Grid.IdxX % blocks, h = (Grid.IdxX / blocks) % s.H, b = Grid.IdxX / (blocks * s.H);
        int t = blk * g + lane, stride = s.Stride, kvh = h / (s.H / s.Kv);
        bool active = t < s.T;
        int kOff = s.H * s.Hd + kvh * s.Hd, vOff = (s.H + s.Kv) * s.Hd + kvh * s.Hd;
        long q = (long)(b * s.T + t) * stride + h * s.Hd;
        long o = (long)(b * s.T + t) * s.H * s.Hd + h * s.Hd;
        if (active)
        {
            for (int d = 0; d < s.Hd; d++) output[o + d] = 0f;
        }

        float m = float.NegativeInfinity, l = 0f;
        int lastKey = XMath.Min(s.T - 1, blk * g + g - 1);
        for (int j0 = 0; j0 <= lastKey; j0 += g)
        {
            // Rows past the sequence are zeroed: their probability is 0, but 0 · (stale shared memory) could be NaN.
            int j = j0 + lane;
            long kv = (long)(b * s.T + j) * stride;
            for (int d = 0; d < s.Hd; d++)
            {
                kTile[lane * MaxHeadDim + d] = j < s.T ? qkv[kv + kOff + d] : 0f;
                vTile[lane * MaxHeadDim + d] = j < s.T ? qkv[kv + vOff + d] : 0f;
            }

            Group.Barrier();
            if (active)
            {
                float tileMax = float.NegativeInfinity;
                // CUDA's max.f32 drops a NaN operand, so a NaN score (a NaN query or key) is noted apart: the tile is
                // then folded in and its NaN reaches l and the output, as on the CPU.
                bool nanScore = false;
                for (int jj = 0; jj < g; jj++)
                {
                    int key = j0 + jj;
                    float sc = float.NegativeInfinity;
                    if (key <= t && mask[b * s.T + key] != 0f)
                    {
                        float dot = 0f;
                        for (int d = 0; d < s.Hd; d++) dot += qkv[q + d] * kTile[jj * MaxHeadDim + d];
                        sc = s.Scale * dot;
                    }

                    scores[lane * Tile + jj] = sc;
                    tileMax = XMath.Max(tileMax, sc);
                    nanScore |= XMath.IsNaN(sc);
                }

                if (tileMax != float.NegativeInfinity || nanScore)
                {
                    float mNew = XMath.Max(m, tileMax), correction = XMath.Exp(m - mNew), sum = 0f;
                    for (int jj = 0; jj < g; jj++)
                    {
                        float p = XMath.Exp(scores[lane * Tile + jj] - mNew);
                        scores[lane * Tile + jj] = p;
                        sum += p;
                    }

                    l = l * correction + sum;
                    for (int d = 0; d < s.Hd; d++)
                    {
                        float acc = output[o + d] * correction;
                        for (int jj = 0; jj < g; jj++) acc += scores[lane * Tile + jj] * vTile[jj * MaxHeadDim + d];
                        output[o + d] = acc;
                    }

                    m = mNew;
                }
            }

            Group.Barrier();
        }

        if (!active) return;
        long row = (long)(b * s.H + h) * s.T + t;
        if (l > 0f)
        {
            float inv = 1f / l;
            for (int d = 0; d < s.Hd; d++) output[o + d] *= inv;
            lse[row] = m + XMath.Log(l);
        }
        else
        {
            // No visible key: +∞, which the backward reads as "no probability anywhere"; a NaN row stays NaN.
            lse[row] = XMath.IsNaN(l) ? l : float.PositiveInfinity;
        }
    }

    /// <summary>One thread per (b, h, t): delta = Σ_d dOut·out (the softmax backward's row term).</summary>
    public static void Delta(Index1D index, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> delta, Shape s)
    {
        int t = index % s.T, h = (index / s.T) % s.H, b = index / (s.T * s.H);
        long o = (long)(b * s.T + t) * s.H * s.Hd + h * s.Hd;
        float acc = 0f;
        for (int d = 0; d < s.Hd; d++) acc += dOutput[o + d] * output[o + d];
        delta[index] = acc;
    }

    /// <summary>
    /// Grid: one group per (b, h, block of queries), thread = query t, key tiles staged in shared memory as in
    /// <see cref="Forward"/>: dq = scale·Σ_j P_tj·(dOut_t·v_j − delta_t)·k_j, written into dQkv's q part.
    /// </summary>
    public static void BackwardQuery(ArrayView<float> qkv, ArrayView<float> mask, ArrayView<float> dOutput, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dQkv, Shape s)
    {
        var kTile = SharedMemory.Allocate<float>(Tile * MaxHeadDim);
        var vTile = SharedMemory.Allocate<float>(Tile * MaxHeadDim);
        var dsTile = SharedMemory.Allocate<float>(Tile * Tile);
        int g = Group.DimX, lane = Group.IdxX, blocks = (s.T + g - 1) / g;
        int blk = Grid.IdxX % blocks, h = (Grid.IdxX / blocks) % s.H, b = Grid.IdxX / (blocks * s.H);
        int t = blk * g + lane, stride = s.Stride, kvh = h / (s.H / s.Kv);
        bool active = t < s.T;
        int kOff = s.H * s.Hd + kvh * s.Hd, vOff = (s.H + s.Kv) * s.Hd + kvh * s.Hd;
        long q = (long)(b * s.T + t) * stride + h * s.Hd;
        long o = (long)(b * s.T + t) * s.H * s.Hd + h * s.Hd;
        long row = (long)(b * s.H + h) * s.T + t;
        float rowLse = float.PositiveInfinity, rowDelta = 0f;
        if (active)
        {
            for (int d = 0; d < s.Hd; d++) dQkv[q + d] = 0f;
            rowLse = lse[row];
            rowDelta = delta[row];
        }

        int lastKey = XMath.Min(s.T - 1, blk * g + g - 1);
        for (int j0 = 0; j0 <= lastKey; j0 += g)
        {
            int j = j0 + lane;
            long kv = (long)(b * s.T + j) * stride;
            for (int d = 0; d < s.Hd; d++)
            {
                kTile[lane * MaxHeadDim + d] = j < s.T ? qkv[kv + kOff + d] : 0f;
                vTile[lane * MaxHeadDim + d] = j < s.T ? qkv[kv + vOff + d] : 0f;
            }

            Group.Barrier();
            if (active && rowLse != float.PositiveInfinity)
            {
                for (int jj = 0; jj < g; jj++)
                {
                    int key = j0 + jj;
                    float ds = 0f;
                    if (key <= t && mask[b * s.T + key] != 0f)
                    {
                        float dot = 0f, dp = 0f;
                        for (int d = 0; d < s.Hd; d++)
                        {
                            dot += qkv[q + d] * kTile[jj * MaxHeadDim + d];
                            dp += dOutput[o + d] * vTile[jj * MaxHeadDim + d];
                        }

                        float p = XMath.Exp(s.Scale * dot - rowLse);
                        ds = s.Scale * p * (dp - rowDelta);
                    }

                    dsTile[lane * Tile + jj] = ds;
                }

                for (int d = 0; d < s.Hd; d++)
                {
                    float acc = dQkv[q + d];
                    for (int jj = 0; jj < g; jj++) acc += dsTile[lane * Tile + jj] * kTile[jj * MaxHeadDim + d];
                    dQkv[q + d] = acc;
                }
            }

            Group.Barrier();
        }
    }

    /// <summary>
    /// Grid: one group per (b, kv head, block of keys), thread = key j; for each query head of the group, query
    /// tiles (q, dOut, lse, delta) are staged in shared memory: dk = scale·Σ_{h, t ≥ j} P_tj·(dOut_t·v_j − delta_t)·q_t
    /// and dv = Σ P_tj·dOut_t, written into dQkv's k and v parts (zero for a padding key).
    /// </summary>
    public static void BackwardKeyValue(ArrayView<float> qkv, ArrayView<float> mask, ArrayView<float> dOutput, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dQkv, Shape s)
    {
        var qTile = SharedMemory.Allocate<float>(Tile * MaxHeadDim);
        var oTile = SharedMemory.Allocate<float>(Tile * MaxHeadDim);
        var lseTile = SharedMemory.Allocate<float>(Tile);
        var deltaTile = SharedMemory.Allocate<float>(Tile);
        var pTile = SharedMemory.Allocate<float>(Tile * Tile);
        var dsTile = SharedMemory.Allocate<float>(Tile * Tile);
        int g = Group.DimX, lane = Group.IdxX, blocks = (s.T + g - 1) / g;
        int blk = Grid.IdxX % blocks, kvh = (Grid.IdxX / blocks) % s.Kv, b = Grid.IdxX / (blocks * s.Kv);
        int j = blk * g + lane, stride = s.Stride, group = s.H / s.Kv;
        bool inRange = j < s.T;
        bool active = inRange && mask[b * s.T + j] != 0f;
        long kv = (long)(b * s.T + j) * stride;
        long k = kv + s.H * s.Hd + kvh * s.Hd, v = kv + (s.H + s.Kv) * s.Hd + kvh * s.Hd;
        if (inRange)
        {
            for (int d = 0; d < s.Hd; d++)
            {
                dQkv[k + d] = 0f;
                dQkv[v + d] = 0f;
            }
        }

        for (int h = kvh * group; h < (kvh + 1) * group; h++)
        {
            for (int t0 = blk * g; t0 < s.T; t0 += g)
            {
                int tq = t0 + lane;
                long q = (long)(b * s.T + tq) * stride + h * s.Hd;
                long o = (long)(b * s.T + tq) * s.H * s.Hd + h * s.Hd;
                long row = (long)(b * s.H + h) * s.T + tq;
                for (int d = 0; d < s.Hd; d++)
                {
                    qTile[lane * MaxHeadDim + d] = tq < s.T ? qkv[q + d] : 0f;
                    oTile[lane * MaxHeadDim + d] = tq < s.T ? dOutput[o + d] : 0f;
                }

                lseTile[lane] = tq < s.T ? lse[row] : float.PositiveInfinity;
                deltaTile[lane] = tq < s.T ? delta[row] : 0f;
                Group.Barrier();
                if (active)
                {
                    for (int tt = 0; tt < g; tt++)
                    {
                        int query = t0 + tt;
                        float p = 0f, ds = 0f, rowLse = lseTile[tt];
                        if (query >= j && query < s.T && rowLse != float.PositiveInfinity)
                        {
                            float dot = 0f, dp = 0f;
                            for (int d = 0; d < s.Hd; d++)
                            {
                                dot += qTile[tt * MaxHeadDim + d] * qkv[k + d];
                                dp += oTile[tt * MaxHeadDim + d] * qkv[v + d];
                            }

                            p = XMath.Exp(s.Scale * dot - rowLse);
                            ds = s.Scale * p * (dp - deltaTile[tt]);
                        }

                        pTile[lane * Tile + tt] = p;
                        dsTile[lane * Tile + tt] = ds;
                    }

                    for (int d = 0; d < s.Hd; d++)
                    {
                        float accK = dQkv[k + d], accV = dQkv[v + d];
                        for (int tt = 0; tt < g; tt++)
                        {
                            accK += dsTile[lane * Tile + tt] * qTile[tt * MaxHeadDim + d];
                            accV += pTile[lane * Tile + tt] * oTile[tt * MaxHeadDim + d];
                        }

                        dQkv[k + d] = accK;
                        dQkv[v + d] = accV;
                    }
                }

                Group.Barrier();
            }
        }
    }
}
