using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Top-k/top-p picks, as the host sampler: only the most likely tokens can survive the filters, so a probability
/// threshold tau (from max p / 2) is halved until the tokens with p ≥ tau satisfy top-k or top-p; those candidates are
/// compacted in vocabulary order (per-thread counts over fixed contiguous chunks and an exclusive scan), bitonic-sorted
/// (descending p, ties by token id; in shared memory up to <see cref="SharedSortCapacity"/>, else in the caller's
/// scratch), cut, and one thread walks the chunk sums of the kept tokens to the draw. Every sum is a fixed-order
/// reduction: the same inputs give the same bits.
/// </summary>
public sealed partial class SamplingDeviceKernels
{
    /// <summary>Largest padded candidate count sorted in shared memory (typical top-k/top-p keeps tens to hundreds).</summary>
    private const int SharedSortCapacity = 1024;

    private Action<KernelConfig, ArrayView<float>, ArrayView<double>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>, TopArgs>? topPick;

    /// <summary>
    /// Scratch elements per row that the top-k/top-p <see cref="Pick(ArrayView{float}, ArrayView{double}, ArrayView{int}, ArrayView{float}, int, int, float, int, float, ArrayView{float}, ArrayView{int})"/>
    /// needs in each scratch view: the smallest power of two ≥ <paramref name="vocab"/> (any candidate count, padded).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocab"/> is not in [1, 2^30].</exception>
    public static int ScratchPerRow(int vocab)
    {
        if (vocab < 1 || vocab > 1 << 30) throw new ArgumentOutOfRangeException(nameof(vocab), vocab, "must be in [1, 2^30].");
        int n = 1;
        while (n < vocab) n <<= 1;
        return n;
    }

    /// <summary>Whether the filtered Pick filters (and so needs its scratch): sampling (T &gt; 0) with top-k or top-p set.</summary>
    public static bool Filters(float temperature, int topK, float topP) => temperature != 0f && (topK != 0 || topP < 1f);

    /// <summary>
    /// As the host sampler with top-k/top-p. With <paramref name="temperature"/> = 0, or <paramref name="topK"/> = 0 and
    /// <paramref name="topP"/> = 1 (no filter), exactly the plain <see cref="Pick(ArrayView{float}, ArrayView{double}, ArrayView{int}, ArrayView{float}, int, int, float)"/>
    /// (scratch unused). Otherwise, per row b with lse = log Σ_j exp(z_j/T) (shifted by the max) and p_j = exp(z_j/T − lse)
    /// in fp32: tau starts at max p · 0.5 and halves (to 0 once below 1e-30) until the tokens with p ≥ tau number at least
    /// topK (topK &gt; 0), or their Σ p (double) ≥ topP (topP &lt; 1), or tau = 0, or they are every token; those
    /// candidates sorted by p descending (ties: lower token id first) keep the first min(topK, count) (all when topK = 0),
    /// cut after the first whose running sum (double) ≥ topP; with mass = the kept Σ p and u = uniforms[b]·mass, tokens[b]
    /// = the first kept token in that order whose running sum exceeds u (the last kept when rounding leaves none), and
    /// logProbs[b] = z[token]/T − lse, the log-probability under the untruncated distribution at T. −∞ logits have p = 0;
    /// rows whose logits are all −∞ or hold NaN give an unspecified token (the host picks as plain sampling there).
    /// </summary>
    /// <param name="scratchProbs">Device scratch, rows·<see cref="ScratchPerRow"/>(vocab) floats; overwritten.</param>
    /// <param name="scratchTokens">Device scratch, rows·<see cref="ScratchPerRow"/>(vocab) ints; overwritten.</param>
    /// <exception cref="ArgumentOutOfRangeException">topK &lt; 0, topP outside (0, 1], or a bad temperature, rows or vocab.</exception>
    /// <exception cref="ArgumentException">A view shorter than rows·vocab (logits), rows (uniforms, tokens, logProbs) or rows·ScratchPerRow(vocab) (scratch, when filtering).</exception>
    public void Pick(ArrayView<float> logits, ArrayView<double> uniforms, ArrayView<int> tokens, ArrayView<float> logProbs, int rows, int vocab, float temperature,
        int topK, float topP, ArrayView<float> scratchProbs, ArrayView<int> scratchTokens)
    {
        if (topK < 0) throw new ArgumentOutOfRangeException(nameof(topK), topK, "must be >= 0 (0: no top-k).");
        if (!(topP > 0f && topP <= 1f)) throw new ArgumentOutOfRangeException(nameof(topP), topP, "must be in (0, 1] (1: no top-p).");
        if (!Filters(temperature, topK, topP))
        {
            Pick(logits, uniforms, tokens, logProbs, rows, vocab, temperature);
            return;
        }

        // Filtering implies temperature ≠ 0, so a valid one here is > 0.
        CheckPick(logits, uniforms, tokens, logProbs, rows, vocab, temperature);
        int stride = ScratchPerRow(vocab);
        long need = (long)rows * stride;
        if (scratchProbs.Length < need) throw new ArgumentException($"scratchProbs has {scratchProbs.Length} elements, needs rows*ScratchPerRow(vocab) = {need}.", nameof(scratchProbs));
        if (scratchTokens.Length < need) throw new ArgumentException($"scratchTokens has {scratchTokens.Length} elements, needs rows*ScratchPerRow(vocab) = {need}.", nameof(scratchTokens));
        topPick ??= accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<double>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>, TopArgs>(TopPickKernel);
        topPick(new KernelConfig(rows, GroupSize), logits, uniforms, tokens, logProbs, scratchProbs, scratchTokens,
            new TopArgs { Vocab = vocab, Stride = stride, Scale = 1f / temperature, TopK = topK, TopP = topP });
    }

    internal struct TopArgs
    {
        public int Vocab;
        public int Stride;
        public float Scale;
        public int TopK;
        public float TopP;
    }

    private static void TopPickKernel(ArrayView<float> logits, ArrayView<double> uniforms, ArrayView<int> tokens, ArrayView<float> logProbs,
        ArrayView<float> keys, ArrayView<int> ids, TopArgs a)
    {
        var sMax = SharedMemory.Allocate<float>(MaxGroupSize);
        var sArg = SharedMemory.Allocate<int>(MaxGroupSize);
        var sSum = SharedMemory.Allocate<double>(MaxGroupSize);
        var sCount = SharedMemory.Allocate<int>(MaxGroupSize);
        var sKeys = SharedMemory.Allocate<float>(SharedSortCapacity);
        var sIds = SharedMemory.Allocate<int>(SharedSortCapacity);
        int tid = Group.IdxX, g = Group.DimX, row = Grid.IdxX, v = a.Vocab;
        long o = (long)row * v, so = (long)row * a.Stride;
        var r = RowMax(logits, o, v, a.Scale, sMax, sArg, sSum);
        float lse = r.Lse;

        // Contiguous chunks in vocabulary order, so each thread's candidates land in order after the scan.
        int chunk = (v + g - 1) / g;
        int start = XMath.Min(tid * chunk, v), end = XMath.Min(start + chunk, v);
        float tau = XMath.Exp(logits[o + r.Arg] * a.Scale - lse) * 0.5f;
        int mine, count;
        while (true)
        {
            mine = 0;
            double above = 0;
            for (int j = start; j < end; j++)
            {
                float p = XMath.Exp(logits[o + j] * a.Scale - lse);
                if (p >= tau)
                {
                    mine++;
                    above += p;
                }
            }

            sCount[tid] = mine;
            sSum[tid] = above;
            Group.Barrier();
            for (int s = g / 2; s > 0; s >>= 1)
            {
                if (tid < s)
                {
                    sCount[tid] += sCount[tid + s];
                    sSum[tid] += sSum[tid + s];
                }

                Group.Barrier();
            }

            count = sCount[0];
            double total = sSum[0];
            Group.Barrier();
            // NaN tau (NaN or all −∞ logits) would never reach 0: stop instead of spinning.
            if ((a.TopK > 0 && count >= a.TopK) || (a.TopP < 1f && total >= a.TopP) || tau == 0f || count == v || XMath.IsNaN(tau)) break;
            tau = tau < 1e-30f ? 0f : tau * 0.5f;
        }

        if (count == 0)
        {
            if (tid == 0)
            {
                tokens[row] = r.Arg;
                logProbs[row] = logits[o + r.Arg] * a.Scale - lse;
            }

            return;
        }

        // Exclusive scan of the per-thread candidate counts (Hillis–Steele over the group).
        sCount[tid] = mine;
        Group.Barrier();
        for (int s = 1; s < g; s <<= 1)
        {
            int add = tid >= s ? sCount[tid - s] : 0;
            Group.Barrier();
            sCount[tid] += add;
            Group.Barrier();
        }

        int at = sCount[tid] - mine;
        int padded = 1;
        while (padded < count) padded <<= 1;
        int keep = a.TopK > 0 ? XMath.Min(a.TopK, count) : count;
        if (padded <= SharedSortCapacity)
        {
            Compact(logits, o, a.Scale, lse, tau, start, end, at, count, padded, sKeys, sIds, 0);
            BitonicSort(sKeys, sIds, 0, padded);
            for (int i = tid; i < keep; i += g)
            {
                keys[so + i] = sKeys[i];
                ids[so + i] = sIds[i];
            }

            Group.Barrier();
        }
        else
        {
            Compact(logits, o, a.Scale, lse, tau, start, end, at, count, padded, keys, ids, so);
            BitonicSort(keys, ids, so, padded);
        }

        // Fixed contiguous chunks of the kept tokens in sorted order; thread 0 walks their sums, then one chunk.
        int kc = (keep + g - 1) / g;
        int k0 = XMath.Min(tid * kc, keep), k1 = XMath.Min(k0 + kc, keep);
        double part = 0;
        for (int j = k0; j < k1; j++) part += keys[so + j];
        sSum[tid] = part;
        Group.Barrier();
        if (tid != 0) return;
        double topP = a.TopP, run = 0;
        int cut = keep;
        bool found = false;
        for (int t = 0; t < g && !found; t++)
        {
            int c0 = t * kc;
            if (c0 >= keep) break;
            if (run + sSum[t] < topP)
            {
                run += sSum[t];
                continue;
            }

            int c1 = XMath.Min(c0 + kc, keep);
            for (int j = c0; j < c1; j++)
            {
                run += keys[so + j];
                if (run >= topP)
                {
                    cut = j + 1;
                    found = true;
                    break;
                }
            }
        }

        double u = uniforms[row] * run, acc = 0;
        int chosen = ids[so + cut - 1];
        bool picked = false;
        for (int t = 0; t < g && !picked; t++)
        {
            int c0 = t * kc;
            if (c0 >= cut) break;
            int c1 = XMath.Min(c0 + kc, keep);
            if (c1 <= cut && !(u < acc + sSum[t]))
            {
                acc += sSum[t];
                continue;
            }

            c1 = XMath.Min(c1, cut);
            for (int j = c0; j < c1; j++)
            {
                acc += keys[so + j];
                if (u < acc)
                {
                    chosen = ids[so + j];
                    picked = true;
                    break;
                }
            }
        }

        tokens[row] = chosen;
        logProbs[row] = logits[o + chosen] * a.Scale - lse;
    }

    /// <summary>
    /// Writes this thread's candidates (p ≥ tau in [start, end)) from position <paramref name="at"/> of the row's
    /// keys/ids at <paramref name="b"/>, then pads [count, padded) with (−1, int.MaxValue), which sorts last; ends with a barrier.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Compact(ArrayView<float> logits, long o, float scale, float lse, float tau, int start, int end, int at, int count, int padded,
        ArrayView<float> keys, ArrayView<int> ids, long b)
    {
        for (int j = start; j < end; j++)
        {
            float p = XMath.Exp(logits[o + j] * scale - lse);
            if (p >= tau)
            {
                keys[b + at] = p;
                ids[b + at] = j;
                at++;
            }
        }

        for (int i = count + Group.IdxX; i < padded; i += Group.DimX)
        {
            keys[b + i] = -1f;
            ids[b + i] = int.MaxValue;
        }

        Group.Barrier();
    }

    /// <summary>
    /// Sorts keys/ids [b, b + n) (n a power of two) by key descending, ties by the smaller id: a bitonic network, each
    /// stage's n/2 compare-exchanges spread over the group and closed by a barrier.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BitonicSort(ArrayView<float> keys, ArrayView<int> ids, long b, int n)
    {
        int tid = Group.IdxX, g = Group.DimX, half = n >> 1;
        for (int size = 2; size <= n; size <<= 1)
        {
            for (int stride = size >> 1; stride > 0; stride >>= 1)
            {
                for (int q = tid; q < half; q += g)
                {
                    int i = ((q & ~(stride - 1)) << 1) | (q & (stride - 1));
                    int l = i + stride;
                    float ki = keys[b + i], kl = keys[b + l];
                    int ii = ids[b + i], il = ids[b + l];
                    bool lFirst = kl > ki || (kl == ki && il < ii);
                    // Blocks with (i & size) = 0 run in the wanted order, the others reversed, as the network needs.
                    if (lFirst == ((i & size) == 0))
                    {
                        keys[b + i] = kl;
                        keys[b + l] = ki;
                        ids[b + i] = il;
                        ids[b + l] = ii;
                    }
                }

                Group.Barrier();
            }
        }
    }
}
