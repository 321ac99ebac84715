using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Picks each row's next token on the device from its last-position logits [rows, vocab], so decoding downloads two
/// numbers per row instead of the vocabulary. The formulas and the order of the sums are those of the engine's host
/// sampler (Rlhf.Model's DecodingLoop; top-k/top-p in SamplingDeviceKernels.Top.cs), and the host draws the uniforms
/// with its own generator, so the same logits and seed give the same tokens (up to the last ulp of exp). One group per
/// row: a tree for the max and the log-sum-exp, then fixed contiguous chunks of the vocabulary summed per thread, and
/// one thread walking the chunk sums in vocabulary order to the chunk holding the draw and through that chunk to the
/// token. Deterministic: no atomics. Written for CUDA; tested on ILGPU's CPU accelerator.
/// </summary>
public sealed partial class SamplingDeviceKernels
{
    /// <summary>Largest group the kernel's shared memory is sized for (a power of two).</summary>
    public const int MaxGroupSize = 256;

    private readonly Accelerator accelerator;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<double>, ArrayView<int>, ArrayView<float>, PickArgs> pick;

    /// <param name="device">The accelerator to run on.</param>
    /// <param name="groupSize">Threads per row (0: min(256, the device limit)); rounded down to a power of two.</param>
    public SamplingDeviceKernels(KernelDevice device, int groupSize = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        int limit = Math.Min(MaxGroupSize, groupSize > 0 ? groupSize : device.MaxGroupSize);
        GroupSize = 1;
        while (GroupSize * 2 <= limit) GroupSize *= 2;
        accelerator = device.Accelerator;
        pick = device.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<double>, ArrayView<int>, ArrayView<float>, PickArgs>(PickKernel);
    }

    /// <summary>Threads per row.</summary>
    public int GroupSize { get; }

    /// <summary>
    /// For each row b with z = logits[b·vocab .. (b+1)·vocab): with <paramref name="temperature"/> = 0 (greedy),
    /// tokens[b] = the first index of max z and logProbs[b] = z[token] − log Σ_j exp(z_j − max z). Otherwise, with
    /// lse = log Σ_j exp(z_j/T − max z/T) + max z/T and p_j = exp(z_j/T − lse): tokens[b] = the first j (in vocabulary
    /// order, skipping p_j = 0) whose running sum Σ_{i ≤ j} p_i (in double) exceeds uniforms[b]·Σ_j p_j, or the last j
    /// with p_j &gt; 0 when rounding leaves none; logProbs[b] = z[token]/T − lse. uniforms (in [0, 1)) are read only when
    /// sampling. NaN logits give an unspecified token (the host sampler's NaN handling is not reproduced); ±∞ follow IEEE.
    /// </summary>
    /// <exception cref="ArgumentException">A view shorter than rows·vocab (logits) or rows (the others), or a bad temperature.</exception>
    public void Pick(ArrayView<float> logits, ArrayView<double> uniforms, ArrayView<int> tokens, ArrayView<float> logProbs, int rows, int vocab, float temperature)
    {
        CheckPick(logits, uniforms, tokens, logProbs, rows, vocab, temperature);
        bool greedy = temperature == 0f;
        pick(new KernelConfig(rows, GroupSize), logits, uniforms, tokens, logProbs,
            new PickArgs { Vocab = vocab, Scale = greedy ? 1f : 1f / temperature, Greedy = greedy ? 1 : 0 });
    }

    /// <summary>The arguments both Pick overloads share: rows and vocab positive, temperature finite and ≥ 0, views long enough.</summary>
    private static void CheckPick(ArrayView<float> logits, ArrayView<double> uniforms, ArrayView<int> tokens, ArrayView<float> logProbs, int rows, int vocab, float temperature)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocab);
        if (!(temperature >= 0f) || float.IsPositiveInfinity(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "must be finite and >= 0.");
        if (logits.Length < (long)rows * vocab) throw new ArgumentException($"logits has {logits.Length} elements, needs rows*vocab = {(long)rows * vocab}.", nameof(logits));
        if (uniforms.Length < rows) throw new ArgumentException($"uniforms has {uniforms.Length} elements, needs rows = {rows}.", nameof(uniforms));
        if (tokens.Length < rows) throw new ArgumentException($"tokens has {tokens.Length} elements, needs rows = {rows}.", nameof(tokens));
        if (logProbs.Length < rows) throw new ArgumentException($"logProbs has {logProbs.Length} elements, needs rows = {rows}.", nameof(logProbs));
    }

    internal struct PickArgs
    {
        public int Vocab;
        public float Scale;
        public int Greedy;
    }

    private static void PickKernel(ArrayView<float> logits, ArrayView<double> uniforms, ArrayView<int> tokens, ArrayView<float> logProbs, PickArgs a)
    {
        var sMax = SharedMemory.Allocate<float>(MaxGroupSize);
        var sArg = SharedMemory.Allocate<int>(MaxGroupSize);
        var sSum = SharedMemory.Allocate<double>(MaxGroupSize);
        var sLast = SharedMemory.Allocate<int>(MaxGroupSize);
        int tid = Group.IdxX, g = Group.DimX, row = Grid.IdxX, v = a.Vocab;
        long o = (long)row * v;

        var r = RowMax(logits, o, v, a.Scale, sMax, sArg, sSum);
        int arg = r.Arg;
        float lse = r.Lse;
        if (a.Greedy != 0)
        {
            if (tid == 0)
            {
                tokens[row] = arg;
                logProbs[row] = logits[o + arg] - lse;
            }

            return;
        }

        // Contiguous chunks in vocabulary order, so walking the chunk sums then one chunk is the host's running sum.
        int chunk = (v + g - 1) / g;
        int start = tid * chunk, end = XMath.Min(start + chunk, v);
        double c = 0;
        int last = -1;
        for (int j = start; j < end; j++)
        {
            float p = XMath.Exp(logits[o + j] * a.Scale - lse);
            if (p == 0f) continue;
            c += p;
            last = j;
        }

        sSum[tid] = c;
        sLast[tid] = last;
        Group.Barrier();
        if (tid != 0) return;
        double total = 0;
        for (int t = 0; t < g; t++) total += sSum[t];
        double u = uniforms[row] * total, run = 0;
        int chosen = -1, lastValid = 0;
        for (int t = 0; t < g && chosen < 0; t++)
        {
            if (sLast[t] >= 0) lastValid = sLast[t];
            if (!(u < run + sSum[t]))
            {
                run += sSum[t];
                continue;
            }

            int s0 = t * chunk, s1 = XMath.Min(s0 + chunk, v);
            for (int j = s0; j < s1; j++)
            {
                float p = XMath.Exp(logits[o + j] * a.Scale - lse);
                if (p == 0f) continue;
                run += p;
                if (u < run)
                {
                    chosen = j;
                    break;
                }
            }
        }

        if (chosen < 0) chosen = lastValid;
        tokens[row] = chosen;
        logProbs[row] = logits[o + chosen] * a.Scale - lse;
    }

    /// <summary>The first index of a row's max logit and its log-sum-exp at a scale.</summary>
    private struct RowStats
    {
        public int Arg;
        public float Lse;
    }

    /// <summary>
    /// Every thread of the group gets the row's first index of max z (ties → the lower index, as IndexOfMax) and
    /// lse = log Σ_j exp(scale·z_j − scale·max z) + scale·max z (a tree over the group's strided partial sums, in double).
    /// Ends with a barrier, so the shared arrays can be reused.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static RowStats RowMax(ArrayView<float> logits, long o, int v, float scale, ArrayView<float> sMax, ArrayView<int> sArg, ArrayView<double> sSum)
    {
        int tid = Group.IdxX, g = Group.DimX;

        // Max and its first index (ties → the lower index, as IndexOfMax).
        float m = float.NegativeInfinity;
        int arg = int.MaxValue;
        for (int j = tid; j < v; j += g)
        {
            float z = logits[o + j];
            if (z > m || (z == m && j < arg))
            {
                m = z;
                arg = j;
            }
        }

        sMax[tid] = m;
        sArg[tid] = arg;
        Group.Barrier();
        for (int s = g / 2; s > 0; s >>= 1)
        {
            if (tid < s)
            {
                float m2 = sMax[tid + s];
                int a2 = sArg[tid + s];
                if (m2 > sMax[tid] || (m2 == sMax[tid] && a2 < sArg[tid]))
                {
                    sMax[tid] = m2;
                    sArg[tid] = a2;
                }
            }

            Group.Barrier();
        }

        float max = sMax[0] * scale;
        arg = sArg[0];

        // log Σ exp(scale·z − max), shifted by the max so no exponent overflows.
        double e = 0;
        for (int j = tid; j < v; j += g) e += XMath.Exp(logits[o + j] * scale - max);
        sSum[tid] = e;
        Group.Barrier();
        for (int s = g / 2; s > 0; s >>= 1)
        {
            if (tid < s) sSum[tid] += sSum[tid + s];
            Group.Barrier();
        }

        float lse = (float)(max + XMath.Log(sSum[0]));
        Group.Barrier();
        return new RowStats { Arg = arg, Lse = lse };
    }
}
