using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Ppo;

/// <summary>
/// Generalised advantage estimation over [B, T] rewards and values (TRL PPOTrainer.compute_advantages, before whitening).
/// </summary>
public static unsafe class Gae
{
    /// <summary>
    /// Effectively runs TRL's reverse scan per row with masked inputs r̃ = mask ≠ 0 ? r : 0 and ṽ = mask ≠ 0 ? v : 0:
    /// <c>last = 0; for t = T−1 … 0: δ = r̃[t] + γ·ṽ[t+1] − ṽ[t] (ṽ[T] = 0); last = δ + γλ·last</c>, and writes
    /// advantages[t] = last and returns[t] = last + ṽ[t] at valid tokens, 0 at masked ones.
    /// </summary>
    /// <remarks>
    /// Masked tokens keep TRL's chain exactly: they contribute r̃ = ṽ = 0 and the running <c>last</c> is carried
    /// through them (it is not reset), so every valid token gets TRL's value bit-for-bit up to rounding. The only
    /// difference from TRL is that the masked outputs are written as 0 instead of TRL's unused carried values.
    /// The CPU path scans 16 time steps at once (an in-register reverse prefix scan with powers of γλ), so it rounds
    /// differently from a sequential loop in the last bits. Rows run in parallel; results do not depend on threads.
    /// A NaN reward or value at a valid token throws; ±Inf propagate.
    /// </remarks>
    /// <exception cref="ArgumentException">An output overlaps an input or the other output, lengths ≠ batch·steps, batch or steps ≤ 0, γ or λ outside [0, 1],
    /// or a NaN input at a valid token (the message names the argument, index and value).</exception>
    public static void Compute(
        ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, ReadOnlySpan<float> mask,
        Span<float> advantages, Span<float> returns, int batch, int steps, float gamma, float lambda)
    {
        int n = PpoArgs.Shape(batch, steps);
        PpoArgs.Length(rewards.Length, n, nameof(rewards));
        PpoArgs.Length(values.Length, n, nameof(values));
        PpoArgs.Length(mask.Length, n, nameof(mask));
        PpoArgs.Length(advantages.Length, n, nameof(advantages));
        PpoArgs.Length(returns.Length, n, nameof(returns));
        PpoArgs.Separate(advantages, nameof(advantages), rewards, nameof(rewards));
        PpoArgs.Separate(advantages, nameof(advantages), values, nameof(values));
        PpoArgs.Separate(advantages, nameof(advantages), mask, nameof(mask));
        PpoArgs.Separate(returns, nameof(returns), rewards, nameof(rewards));
        PpoArgs.Separate(returns, nameof(returns), values, nameof(values));
        PpoArgs.Separate(returns, nameof(returns), mask, nameof(mask));
        PpoArgs.Separate(returns, nameof(returns), advantages, nameof(advantages));
        PpoArgs.UnitInterval(gamma, nameof(gamma));
        PpoArgs.UnitInterval(lambda, nameof(lambda));

        int rowsPerChunk = Math.Max(1, Math.Max((batch + ChunkRunner.MaxChunks - 1) / ChunkRunner.MaxChunks, 8 * 1024 / steps));
        int chunks = (batch + rowsPerChunk - 1) / rowsPerChunk;
        int* badRow = stackalloc int[ChunkRunner.MaxChunks];
        fixed (float* pR = rewards, pV = values, pM = mask, pA = advantages, pRet = returns)
        {
            var body = new Body
            {
                R = pR, V = pV, M = pM, A = pA, Ret = pRet, Batch = batch, Steps = steps, RowsPerChunk = rowsPerChunk, Chunks = chunks,
                Gamma = gamma, Decay = gamma * lambda, BadRow = badRow, CarryPow = CarryPowers(gamma * lambda),
            };
            ChunkRunner.Run(chunks, n, body);
        }

        // The alarm can be false: ±∞ inputs can end a row's carry as NaN.
        PpoArgs.ThrowOnNaNInFlaggedRows(new ReadOnlySpan<int>(badRow, chunks), rowsPerChunk, steps, mask,
            rewards, nameof(rewards), values, nameof(values));
    }

    private struct Body : IChunkBody
    {
        public float* R, V, M, A, Ret;
        public int Batch, Steps, RowsPerChunk, Chunks;
        public float Gamma, Decay;
        public Vector512<float> CarryPow;
        public int* BadRow;

        /// <remarks>
        /// Rows and chunks go from the last to the first: each row is scanned from its end to its start and the row
        /// before it ends where this one starts, so a thread's whole range is one descending stream per buffer. In row
        /// order every row was a new short stream for the hardware prefetchers to find: 19–24 % slower on one thread
        /// (benchmarks/README.md).
        /// </remarks>
        public void Run(int index)
        {
            int chunk = Chunks - 1 - index;
            int rowEnd = Math.Min(Batch, (chunk + 1) * RowsPerChunk);
            BadRow[chunk] = -1;
            for (int b = rowEnd - 1; b >= chunk * RowsPerChunk; b--)
            {
                long o = (long)b * Steps;
                bool nan = Avx512F.IsSupported
                    ? ScanRowVector(R + o, V + o, M + o, A + o, Ret + o, Steps, Gamma, Decay, CarryPow)
                    : ScanRowScalar(R + o, V + o, M + o, A + o, Ret + o, Steps, Steps, 0f, 0f, Gamma, Decay, out _, out _);
                if (nan) BadRow[chunk] = b; // the last one written is the chunk's first bad row
            }
        }
    }

    /// <summary>Sequential reverse scan over t = end−1 … 0 starting from (last, nextValue); returns whether a NaN appeared.</summary>
    private static bool ScanRowScalar(float* r, float* v, float* m, float* a, float* ret, int end, int steps,
        float last, float nextValue, float gamma, float decay, out float lastOut, out float nextValueOut)
    {
        bool nan = false;
        for (int t = end - 1; t >= 0; t--)
        {
            bool valid = m[t] != 0f;
            float vt = valid ? v[t] : 0f;
            float rt = valid ? r[t] : 0f;
            last = rt + gamma * nextValue - vt + decay * last;
            nan |= float.IsNaN(last);
            a[t] = valid ? last : 0f;
            ret[t] = valid ? last + vt : 0f;
            nextValue = vt;
        }

        lastOut = last;
        nextValueOut = nextValue;
        return nan;
    }

    /// <summary>
    /// The same scan, 16 steps per block: δ for the block is element-wise, then a log-step reverse prefix scan
    /// X[j] = Σ_{k≥j} c^{k−j}·δ[k] (four shifted FMAs with c, c², c⁴, c⁸), then A[j] = X[j] + c^{16−j}·last.
    /// The serial dependency is one FMA plus a broadcast per 16 steps instead of one per step.
    /// </summary>
    private static bool ScanRowVector(float* r, float* v, float* m, float* a, float* ret, int steps, float gamma, float decay,
        Vector512<float> carryPow)
    {
        int full = steps & ~15;
        // The ragged end of the row is the start of the reverse scan.
        bool nan = ScanRowScalarTail(r, v, m, a, ret, full, steps, gamma, decay, out float last, out float nextValue);
        if (full == 0) return nan;

        float c1 = decay, c2 = c1 * c1, c4 = c2 * c2, c8 = c4 * c4;
        var vc1 = Vector512.Create(c1);
        var vc2 = Vector512.Create(c2);
        var vc4 = Vector512.Create(c4);
        var vc8 = Vector512.Create(c8);
        var g = Vector512.Create(gamma);
        var zero = Vector512<int>.Zero;
        // Carries stay in vectors: the next block's masked values (only its lane 0 is used) and the running
        // advantage broadcast from lane 0, so no value makes a vector → scalar → vector round trip per block.
        var vAfter = Vector512.Create(nextValue);
        var lastVec = Vector512.Create(last);
        var zeroF = Vector512<float>.Zero;
        for (int t0 = full - 16; t0 >= 0; t0 -= 16)
        {
            // One compare classifies the block: bit j set where step t0 + j is masked.
            var mv = Vector512.Load(m + t0);
            ulong maskedBits = Vector512.ExtractMostSignificantBits(Vector512.Equals(mv, zeroF));
            if (maskedBits == 0xFFFF && vAfter.ToScalar() == 0f)
            {
                // Padding (all masked, and ṽ of the step after it is 0): δ is 0 everywhere, so the general path
                // below would give these same bits, without reading rewards or values.
                zeroF.Store(a + t0);
                zeroF.Store(ret + t0);
                lastVec = Avx512F.BroadcastScalarToVector512(Vector512.FusedMultiplyAdd(carryPow, lastVec, zeroF).GetLower().GetLower());
                vAfter = zeroF;
                continue;
            }

            // Selects only where a step is masked (blocks with every step valid, the common case, skip them), on the
            // compare's vector: masked loads made the JIT move the mask to a vector and back every block.
            var masked = Vector512<float>.Zero;
            var vt = Vector512.Load(v + t0);
            var rt = Vector512.Load(r + t0);
            if (maskedBits != 0)
            {
                masked = Vector512.Equals(mv, zeroF);
                vt = Vector512.ConditionalSelect(masked, zeroF, vt);
                rt = Vector512.ConditionalSelect(masked, zeroF, rt);
            }

            // lane j ← ṽ[t0+j+1]; lane 15 ← the first value of the block after this one (0 at the row end).
            var vNext = Avx512F.AlignRight32(vAfter.AsInt32(), vt.AsInt32(), 1).AsSingle();
            var x = Vector512.FusedMultiplyAdd(g, vNext, rt) - vt;
            x = Vector512.FusedMultiplyAdd(vc1, Avx512F.AlignRight32(zero, x.AsInt32(), 1).AsSingle(), x);
            x = Vector512.FusedMultiplyAdd(vc2, Avx512F.AlignRight32(zero, x.AsInt32(), 2).AsSingle(), x);
            x = Vector512.FusedMultiplyAdd(vc4, Avx512F.AlignRight32(zero, x.AsInt32(), 4).AsSingle(), x);
            x = Vector512.FusedMultiplyAdd(vc8, Avx512F.AlignRight32(zero, x.AsInt32(), 8).AsSingle(), x);
            var adv = Vector512.FusedMultiplyAdd(carryPow, lastVec, x);
            // ṽ is already 0 at masked steps, so the masked advantage plus ṽ is the masked return.
            var maskedAdv = maskedBits == 0 ? adv : Vector512.ConditionalSelect(masked, zeroF, adv);
            maskedAdv.Store(a + t0);
            (maskedAdv + vt).Store(ret + t0);
            lastVec = Avx512F.BroadcastScalarToVector512(adv.GetLower().GetLower());
            vAfter = vt;
        }

        // No NaN test per block: lane 0 of the scan is a sum over every lane of the block (0·NaN is NaN, so this
        // holds for γλ = 0 too) and it is the carry of every later block, so a NaN anywhere in the row's vector part
        // leaves the final carry NaN. (±∞ can end there as NaN too: a false alarm the caller's exact re-check clears.)
        return nan || float.IsNaN(lastVec.ToScalar());
    }

    private static bool ScanRowScalarTail(float* r, float* v, float* m, float* a, float* ret, int begin, int steps,
        float gamma, float decay, out float last, out float nextValue)
    {
        // Shift the pointers so the scalar scan covers [begin, steps) and ends holding the carry for begin.
        return ScanRowScalar(r + begin, v + begin, m + begin, a + begin, ret + begin, steps - begin, steps, 0f, 0f, gamma, decay, out last, out nextValue);
    }

    /// <summary>Lane j carries c^(16−j): the weight of the carried advantage from the block after a block.
    /// Computed once per call (sixteen Math.Pow calls per row used to cost more than the row's scan).</summary>
    private static Vector512<float> CarryPowers(float decay)
    {
        Span<float> powers = stackalloc float[16];
        for (int j = 0; j < 16; j++) powers[j] = (float)Math.Pow(decay, 16 - j);
        return Vector512.Create((ReadOnlySpan<float>)powers);
    }
}
