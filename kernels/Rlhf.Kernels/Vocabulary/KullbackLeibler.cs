using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// KL divergence between a policy and a frozen reference, per token: exactly over the full vocabulary from both
/// models' logits, or estimated from the sampled token's log-probabilities (Schulman's k1, k2, k3, as in TRL).
/// </summary>
public static unsafe class KullbackLeibler
{
    /// <summary>
    /// policyLogits, referenceLogits [N, V] → kl [N]. Effectively computes, per row with p = softmax(x/T), q = softmax(y/T):
    /// kl[i] = Σ_j p_j (log p_j − log q_j). −∞ logits are banned tokens: one the policy bans adds 0; one only the reference
    /// bans (p_j &gt; 0, q_j = 0) makes kl[i] = +∞. Both rows are read once, in parallel over rows; a row
    /// holding a −∞ logit is read twice (the first, faster scan skips the clamp that banned tokens need).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths disagree; temperature is not positive and finite; a logit is NaN or +∞;
    /// or a row is −∞ everywhere. The message names the argument, the row/index and the value.</exception>
    public static void FullVocabulary(
        ReadOnlySpan<float> policyLogits, ReadOnlySpan<float> referenceLogits, int vocabularySize, float temperature, Span<float> kl)
    {
        int rows = VocabularyChecks.Rows(policyLogits.Length, vocabularySize, kl.Length, nameof(policyLogits));
        VocabularyChecks.Rows(referenceLogits.Length, vocabularySize, kl.Length, nameof(referenceLogits));
        float invT = VocabularyChecks.InverseTemperature(temperature);
        if (rows == 0) return;

        int firstBadRow = int.MaxValue;
        fixed (float* pPolicy = policyLogits)
        fixed (float* pReference = referenceLogits)
        fixed (float* pKl = kl)
        {
            var body = new FullBody
            {
                Policy = pPolicy, Reference = pReference, Kl = pKl, Vocabulary = vocabularySize, InvT = invT, FirstBadRow = &firstBadRow,
                PrefetchReference = StreamAliasing.Conflicts(pPolicy, pReference),
            };
            RowParallel.For(rows, 2L * vocabularySize, body);
        }

        if (firstBadRow != int.MaxValue
            && !VocabularyChecks.ThrowIfInvalidRow(policyLogits, vocabularySize, firstBadRow, nameof(policyLogits)))
            VocabularyChecks.ThrowIfInvalidRow(referenceLogits, vocabularySize, firstBadRow, nameof(referenceLogits));
    }

    private struct FullBody : IRowBody
    {
        public float* Policy;
        public float* Reference;
        public float* Kl;
        public int Vocabulary;
        public float InvT;
        public int* FirstBadRow;
        public bool PrefetchReference;

        public readonly void Run(int startRow, int endRow)
        {
            for (int i = startRow; i < endRow; i++)
            {
                var x = new ReadOnlySpan<float>(Policy + (long)i * Vocabulary, Vocabulary);
                var y = new ReadOnlySpan<float>(Reference + (long)i * Vocabulary, Vocabulary);
                var result = KullbackLeiblerRowScan.Scan(x, y, InvT, PrefetchReference);
                if (result.Suspect && (VocabularyChecks.FindInvalid(x) != -2 || VocabularyChecks.FindInvalid(y) != -2))
                {
                    RowParallel.RecordBadRow(FirstBadRow, i);
                    return;
                }

                // Rounding can leave an exact 0 slightly negative; KL ≥ 0 by Gibbs' inequality.
                Kl[i] = (float)Math.Max(result.Kl, 0.0);
            }
        }
    }

    /// <summary>
    /// k1[i] = logProbs[i] − referenceLogProbs[i] (unbiased, can be negative). IEEE rules for ±∞ and NaN.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths differ.</exception>
    public static void K1(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        CheckLengths(logProbs, referenceLogProbs, destination);
        System.Numerics.Tensors.TensorPrimitives.Subtract(logProbs, referenceLogProbs, destination);
    }

    /// <summary>
    /// k2[i] = ½·(log r)² with log r = referenceLogProbs[i] − logProbs[i] (biased, ≥ 0). IEEE rules for ±∞ and NaN.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths differ.</exception>
    public static void K2(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        CheckLengths(logProbs, referenceLogProbs, destination);
        for (int i = 0; i < destination.Length; i++)
        {
            float logRatio = referenceLogProbs[i] - logProbs[i];
            destination[i] = 0.5f * logRatio * logRatio;
        }
    }

    /// <summary>
    /// k3[i] = (r − 1) − log r with r = exp(u), u = referenceLogProbs[i] − logProbs[i] (unbiased, ≥ 0). In float,
    /// e^u − 1 − u loses every digit for the small |u| typical of PPO, so |u| &lt; ½ uses the series
    /// u²·(1/2! + u/3! + … + u⁷/9!) (truncation below 3e−9 relative) and larger |u| the direct form (cancellation costs
    /// at most ~1e−6 relative there). IEEE rules for NaN; r = 0 (u = −∞) gives +∞.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths differ.</exception>
    // Compiled once, fully optimised, and never inlined into a caller: with tiered PGO the re-compiled copies of this
    // loop (its own tiers, or inlined into a hot caller) measured 3-8x slower than the fully optimised one.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void K3(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        CheckLengths(logProbs, referenceLogProbs, destination);
        int n = destination.Length, start = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            bool overlapping = ((ReadOnlySpan<float>)destination).Overlaps(logProbs)
                || ((ReadOnlySpan<float>)destination).Overlaps(referenceLogProbs);
            fixed (float* p = logProbs, q = referenceLogProbs, d = destination)
            {
                // Stores aligned to 64 bytes (a misaligned one splits across two cache lines): the first and last
                // vectors are done unaligned and the aligned ones in between overlap them. Each lane's value depends
                // only on its own input, so the overlap rewrites identical bits and the result does not depend on
                // where the buffers lie. In place (or overlapping) the vectors are strictly sequential instead, each
                // read before it is written, and the row's last vector is computed before anything is stored and
                // stored last (a scalar tail would round its exps differently from the out-of-place path).
                int aligned = CacheLine.FloatsToBoundary(d);
                int second = overlapping || aligned == 0 ? 16 : aligned;
                int last = overlapping ? (n & ~15) - 16 : n - 16;
                var tail = overlapping ? K3Of(Vector512.Load(q + n - 16) - Vector512.Load(p + n - 16)) : default;
                Vector512.Store(K3Of(Vector512.Load(q) - Vector512.Load(p)), d);
                // With one vector in all, stop: in place, a second pass over [0, 16) would read what the first wrote.
                if (last > 0)
                {
                    int i = Math.Min(second, last);
                    // Four independent vectors per iteration: one vector's series is a chain of eight dependent
                    // multiply-adds, which alone would leave the FMA units idle most of the time.
                    for (; !overlapping && i <= last - 64; i += 64)
                    {
                        var u0 = Vector512.Load(q + i) - Vector512.Load(p + i);
                        var u1 = Vector512.Load(q + i + 16) - Vector512.Load(p + i + 16);
                        var u2 = Vector512.Load(q + i + 32) - Vector512.Load(p + i + 32);
                        var u3 = Vector512.Load(q + i + 48) - Vector512.Load(p + i + 48);
                        Vector512.Store(K3Of(u0), d + i);
                        Vector512.Store(K3Of(u1), d + i + 16);
                        Vector512.Store(K3Of(u2), d + i + 32);
                        Vector512.Store(K3Of(u3), d + i + 48);
                    }

                    while (true)
                    {
                        Vector512.Store(K3Of(Vector512.Load(q + i) - Vector512.Load(p + i)), d + i);
                        if (i == last) break;
                        i = Math.Min(i + 16, last);
                    }
                }

                if (overlapping) Vector512.Store(tail, d + n - 16);
                start = n;
            }
        }

        for (int i = start; i < n; i++)
        {
            float u = referenceLogProbs[i] - logProbs[i];
            destination[i] = MathF.Abs(u) < 0.5f ? u * u * K3Series(u) : MathF.Exp(u) - 1f - u;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> K3Of(Vector512<float> u)
    {
        var uu = u * u;
        var series = uu * K3Series(u);
        // PPO's per-token log-ratios are mostly small: skip the exponential when a whole vector is in the series' range
        // (u² < ¼ ⇔ |u| < ½; NaN fails it and takes the general path, where it propagates).
        if (Vector512.LessThanAll(uu, Vector512.Create(0.25f))) return series;
        // With vscalefps the fast exp is exact in range for any argument (large ones scale to +∞); the lower clamp only
        // keeps exp out of subnormals, where e^u is negligible beside 1 + u anyway. MaxNative returns its second
        // operand, u, when u is NaN.
        var e = System.Runtime.Intrinsics.X86.Avx512F.IsSupported
            ? FastExp.Exp(Vector512.MaxNative(Vector512.Create(FastExp.MinArgument), u))
            : Vector512.Exp(u);
        var direct = e - Vector512<float>.One - u;
        return Vector512.ConditionalSelect(Vector512.LessThan(uu, Vector512.Create(0.25f)), series, direct);
    }

    // (e^u − 1 − u) / u² = Σ u^k / (k + 2)!, k = 0..7, by Horner with fused multiply-adds; the scalar and vector forms
    // are the same polynomial and round alike.
    private static float K3Series(float u)
    {
        float r = MathF.FusedMultiplyAdd(u, 1f / 362880, 1f / 40320);
        r = MathF.FusedMultiplyAdd(r, u, 1f / 5040);
        r = MathF.FusedMultiplyAdd(r, u, 1f / 720);
        r = MathF.FusedMultiplyAdd(r, u, 1f / 120);
        r = MathF.FusedMultiplyAdd(r, u, 1f / 24);
        r = MathF.FusedMultiplyAdd(r, u, 1f / 6);
        return MathF.FusedMultiplyAdd(r, u, 0.5f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> K3Series(Vector512<float> u)
    {
        var r = Vector512.FusedMultiplyAdd(u, Vector512.Create(1f / 362880), Vector512.Create(1f / 40320));
        r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(1f / 5040));
        r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(1f / 720));
        r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(1f / 120));
        r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(1f / 24));
        r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(1f / 6));
        return Vector512.FusedMultiplyAdd(r, u, Vector512.Create(0.5f));
    }

    private static void CheckLengths(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> referenceLogProbs, Span<float> destination)
    {
        if (referenceLogProbs.Length != logProbs.Length)
            throw new ArgumentException(
                $"referenceLogProbs has {referenceLogProbs.Length} elements, logProbs has {logProbs.Length}.", nameof(referenceLogProbs));
        if (destination.Length != logProbs.Length)
            throw new ArgumentException($"destination has {destination.Length} elements, logProbs has {logProbs.Length}.", nameof(destination));
        CheckInPlaceOnly(destination, logProbs, nameof(logProbs));
        CheckInPlaceOnly(destination, referenceLogProbs, nameof(referenceLogProbs));
    }

    /// <summary>Exactly in place is fine (each element is read before it is written); a shifted overlap would read
    /// elements already overwritten, so it is rejected, as TensorPrimitives rejects it.</summary>
    private static void CheckInPlaceOnly(Span<float> destination, ReadOnlySpan<float> input, string inputName)
    {
        if (((ReadOnlySpan<float>)destination).Overlaps(input, out int offset) && offset != 0)
            throw new ArgumentException($"destination overlaps {inputName} at an offset of {offset} elements: write in place or to a separate buffer.", nameof(destination));
    }
}
