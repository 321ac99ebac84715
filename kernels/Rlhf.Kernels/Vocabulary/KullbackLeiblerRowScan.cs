using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// KL(p‖q) of one pair of rows, p = softmax(x/T), q = softmax(y/T), from one streaming read of both:
/// KL = Σ p·(x − y)/T − lse(x/T) + lse(y/T). Per lane it keeps the running maxima and exp-sums of x and y and
/// u = Σ e^((x−mx)/T)·(x − y − offset), which only needs rescaling when mx moves. x − y is exact when the two
/// models' logits are close (Sterbenz), the usual case for a policy tuned from its reference; a constant shift s
/// between them costs at most ulp(s)/2 per logit (no rescaling formula can do better once x − y is rounded).
/// Subtracting offset = x − y at the first column keeps u centred, so the sums lose nothing to the shift itself.
/// </summary>
internal static unsafe class KullbackLeiblerRowScan
{
    /// <summary>False scans every row clamped, as before the unclamped pass existed: only for benchmarks to measure
    /// that pass against in the same run (results agree either way).</summary>
    internal static bool UnclampedPass = true;

    public struct Result
    {
        public double Kl;
        public bool Suspect;
    }

    /// <summary>
    /// With <paramref name="prefetchReference"/> (for buffers that alias, <see cref="StreamAliasing"/>) the reference is
    /// also read <see cref="StreamAliasing.PrefetchDistance"/> floats ahead by address (past the row's end too:
    /// prefetches never fault), so it must be pinned; and the loads are aligned to the policy row, whose address then
    /// decides the result's last bits (without it, only the values do).
    /// </summary>
    /// <remarks>
    /// Rows are first scanned without clamping the exp arguments, which saves three of the ~30 vector operations per
    /// 16 logit pairs (the kernel is compute-bound, so ~10 %). With AVX-512's vscalefps the fast exp gives arguments
    /// from <see cref="FastExp.MinArgument"/> down to −2^22·ln 2 their tiny or zero value, and below that 0 or a
    /// non-finite value, never a wrong finite one; a −∞ logit (a banned token) makes x − y infinite or NaN. So every
    /// row the unclamped scan gets wrong has a non-finite result, and exactly those rows are scanned again, clamped,
    /// whose result then stands: rows with banned tokens cost two scans.
    /// </remarks>
    public static Result Scan(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, float invT, bool prefetchReference = false)
    {
        // Rows shorter than a vector are scanned as one vector padded with −∞ (probability 0 under both), so clamped.
        if (policy.Length < 16)
            return Scan<Enabled>(SoftmaxRowScan.Padded(policy, stackalloc float[16]), SoftmaxRowScan.Padded(reference, stackalloc float[16]), invT, false);
        if (Avx512F.IsSupported && UnclampedPass)
        {
            var unclamped = Scan<Disabled>(policy, reference, invT, prefetchReference);
            if (!unclamped.Suspect && double.IsFinite(unclamped.Kl)) return unclamped;
        }

        return Scan<Enabled>(policy, reference, invT, prefetchReference);
    }

    internal static Result Scan<TClamped>(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, float invT, bool prefetchReference)
        where TClamped : struct, IFlag
    {
        if (prefetchReference && Sse.IsSupported)
            return invT == 1f ? Scan<Disabled, Enabled, TClamped>(policy, reference, invT) : Scan<Enabled, Enabled, TClamped>(policy, reference, invT);
        return invT == 1f ? Scan<Disabled, Disabled, TClamped>(policy, reference, invT) : Scan<Enabled, Disabled, TClamped>(policy, reference, invT);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Result Scan<TScaled, TPrefetch, TClamped>(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, float invT)
        where TScaled : struct, IFlag
        where TPrefetch : struct, IFlag
        where TClamped : struct, IFlag
    {
        // State lives in locals of this one method (a struct with mutating helpers would sit on the stack).
        ref float x = ref MemoryMarshal.GetReference(policy);
        ref float y = ref MemoryMarshal.GetReference(reference);
        int n = policy.Length;
        float offset0 = policy[0] - reference[0];
        float offset = float.IsFinite(offset0) ? offset0 : 0f;
        var vOffset = Vector512.Create(offset);
        var vInvT = Vector512.Create(invT);
        var floor = Vector512.Create(FastExp.MinArgument);
        var mx = Vector512.Create(float.MinValue);
        var my = mx;
        var sx = Vector512<float>.Zero;
        var sy = Vector512<float>.Zero;
        var u = Vector512<float>.Zero;

        // Where the buffers alias, the first few pairs alone, so that every later policy load is one aligned 64-byte
        // line, and the reference's too when the rows are equally aligned, as two GC arrays' rows are. There loads
        // that straddle two lines cost a third more (an A/B in one process, 2048 × 32000, buffers 2^28 apart, rows 16
        // or 24 bytes past a line: 42.9–43.7 ms against 32.1–33.8 ms aligned). Only there: elsewhere it gained nothing
        // (0.98–0.99), nor for the token-statistics scan (0.997–1.044), and it makes the last bits depend on the
        // buffers' alignment (the lanes and blocks a logit falls in move with it).
        int j = TPrefetch.On ? CacheLine.FloatsToBoundary(ref x) : 0;
        if (j > 0) Step<TScaled>(LoadFirst(ref x, j), LoadFirst(ref y, j), ref mx, ref my, ref sx, ref sy, ref u, vOffset, vInvT, floor);

        // Blocks of 4 vectors: the maxima are tested once per block (a new lane max is rare after the first blocks),
        // so the common path is two exps, two adds and the cross term per 16 logit pairs.
        for (; j <= n - Block; j += Block)
        {
            var x0 = Vector512.LoadUnsafe(ref x, (nuint)j);
            var x1 = Vector512.LoadUnsafe(ref x, (nuint)(j + 16));
            var x2 = Vector512.LoadUnsafe(ref x, (nuint)(j + 32));
            var x3 = Vector512.LoadUnsafe(ref x, (nuint)(j + 48));
            var y0 = Vector512.LoadUnsafe(ref y, (nuint)j);
            var y1 = Vector512.LoadUnsafe(ref y, (nuint)(j + 16));
            var y2 = Vector512.LoadUnsafe(ref y, (nuint)(j + 32));
            var y3 = Vector512.LoadUnsafe(ref y, (nuint)(j + 48));
            if (TPrefetch.On)
            {
                // One prefetch per 64-byte line of the block, a fixed distance ahead (see StreamAliasing).
                float* ahead = (float*)Unsafe.AsPointer(ref y) + j + StreamAliasing.PrefetchDistance;
                Sse.Prefetch0(ahead);
                Sse.Prefetch0(ahead + 16);
                Sse.Prefetch0(ahead + 32);
                Sse.Prefetch0(ahead + 48);
            }

            var blockX = Vector512.MaxNative(Vector512.MaxNative(x0, x1), Vector512.MaxNative(x2, x3));
            var blockY = Vector512.MaxNative(Vector512.MaxNative(y0, y1), Vector512.MaxNative(y2, y3));
            RaiseMaxima<TScaled>(blockX, blockY, ref mx, ref my, ref sx, ref sy, ref u, vInvT, floor);
            Accumulate<TScaled, TClamped>(x0, y0, mx, my, ref sx, ref sy, ref u, vOffset, vInvT, floor);
            Accumulate<TScaled, TClamped>(x1, y1, mx, my, ref sx, ref sy, ref u, vOffset, vInvT, floor);
            Accumulate<TScaled, TClamped>(x2, y2, mx, my, ref sx, ref sy, ref u, vOffset, vInvT, floor);
            Accumulate<TScaled, TClamped>(x3, y3, mx, my, ref sx, ref sy, ref u, vOffset, vInvT, floor);
        }

        for (; j < n; j += 16)
        {
            // The final partial vector is padded with −∞: probability 0 under both, so it adds nothing (clamped,
            // as −∞ needs; the tail is at most four vectors, so always clamping it costs nothing measurable).
            bool full = j <= n - 16;
            var vx = full ? Vector512.LoadUnsafe(ref x, (nuint)j) : SoftmaxRowScan.LoadLast(ref x, n, j);
            var vy = full ? Vector512.LoadUnsafe(ref y, (nuint)j) : SoftmaxRowScan.LoadLast(ref y, n, j);
            Step<TScaled>(vx, vy, ref mx, ref my, ref sx, ref sy, ref u, vOffset, vInvT, floor);
        }

        return Combine(mx, sx, my, sy, u, invT, offset);
    }

    /// <summary>One vector of logit pairs, clamped (the row's head and tail, whose padding lanes are −∞): new lane
    /// maxima rescale the sums, then <see cref="Accumulate"/>. Inlined, so the sums stay in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TScaled>(Vector512<float> vx, Vector512<float> vy, ref Vector512<float> mx, ref Vector512<float> my,
        ref Vector512<float> sx, ref Vector512<float> sy, ref Vector512<float> u,
        Vector512<float> offset, Vector512<float> invT, Vector512<float> floor)
        where TScaled : struct, IFlag
    {
        RaiseMaxima<TScaled>(vx, vy, ref mx, ref my, ref sx, ref sy, ref u, invT, floor);
        Accumulate<TScaled, Enabled>(vx, vy, mx, my, ref sx, ref sy, ref u, offset, invT, floor);
    }

    /// <summary>The first <paramref name="count"/> (&lt; 16) logits of a row of ≥ 16, the other lanes −∞.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> LoadFirst(ref float row, int count)
    {
        var v = Vector512.LoadUnsafe(ref row);
        var taken = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count));
        return Vector512.ConditionalSelect(taken.AsSingle(), v, Vector512.Create(float.NegativeInfinity));
    }

    /// <summary>Where <paramref name="x"/> or <paramref name="y"/> beats a lane's running maximum, moves that lane's
    /// maximum up and rescales the sums kept relative to it (rare after a row's first blocks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RaiseMaxima<TScaled>(Vector512<float> x, Vector512<float> y, ref Vector512<float> mx, ref Vector512<float> my,
        ref Vector512<float> sx, ref Vector512<float> sy, ref Vector512<float> u, Vector512<float> invT, Vector512<float> floor)
        where TScaled : struct, IFlag
    {
        if (Vector512.GreaterThanAny(x, mx))
        {
            var newMax = Vector512.Max(mx, x);
            var c = Rescale<TScaled>(mx, newMax, invT, floor);
            sx *= c;
            u *= c;
            mx = newMax;
        }

        if (Vector512.GreaterThanAny(y, my))
        {
            var newMax = Vector512.Max(my, y);
            sy *= Rescale<TScaled>(my, newMax, invT, floor);
            my = newMax;
        }
    }

    private const int Block = 4 * 16;

    /// <summary>e^((old − new)/T) per lane, clamped like every other exp argument: the factor that moves sums kept
    /// relative to the lane maxima <paramref name="old"/> onto <paramref name="updated"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Rescale<TScaled>(Vector512<float> old, Vector512<float> updated, Vector512<float> invT, Vector512<float> floor)
        where TScaled : struct, IFlag
        => FastExp.Exp(Vector512.Max(Scale<TScaled>(old - updated, invT), floor));

    /// <summary>
    /// One vector of logit pairs: sx += e^((x−mx)/T), sy += e^((y−my)/T), u += e^((x−mx)/T)·(x − y − offset).
    /// Unclamped, a −∞ logit makes u infinite or NaN (see <see cref="Scan"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate<TScaled, TClamped>(Vector512<float> vx, Vector512<float> vy, Vector512<float> mx, Vector512<float> my,
        ref Vector512<float> sx, ref Vector512<float> sy, ref Vector512<float> u,
        Vector512<float> offset, Vector512<float> invT, Vector512<float> floor)
        where TScaled : struct, IFlag
        where TClamped : struct, IFlag
    {
        // NaN logits pass the clamp and poison sx or sy, which flags the row for the exact check.
        var dx = Scale<TScaled>(vx - mx, invT);
        var dy = Scale<TScaled>(vy - my, invT);
        var ex = FastExp.Exp(TClamped.On ? SoftmaxRowScan.Clamp(dx, floor) : dx);
        var ey = FastExp.Exp(TClamped.On ? SoftmaxRowScan.Clamp(dy, floor) : dy);
        sx += ex;
        sy += ey;
        if (!TClamped.On)
        {
            u = Vector512.FusedMultiplyAdd(ex, (vx - vy) - offset, u);
            return;
        }

        // A token the policy bans has ex = e^−86 (the clamp) and x − y = −∞, or NaN when the reference bans it too:
        // MaxNative(w, −1e20) turns both into −1e20 (x86 returns the second operand for NaN), so the token adds
        // −4.5e−18, nothing at float precision, without a compare and blend per vector. No finite logit pair is 1e20
        // apart; one only the reference bans gives w = +∞ and KL = +∞, as it should.
        var w = Vector512.MaxNative((vx - vy) - offset, Vector512.Create(-1e20f));
        u = Vector512.FusedMultiplyAdd(ex, w, u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scale<TScaled>(Vector512<float> v, Vector512<float> invT)
        where TScaled : struct, IFlag
        => TScaled.On ? v * invT : v;

    private static Result Combine(
        Vector512<float> mxLanes, Vector512<float> sxLanes, Vector512<float> myLanes, Vector512<float> syLanes,
        Vector512<float> uLanes, float invT, float offset)
    {
        float mx = mxLanes.GetElement(0), my = myLanes.GetElement(0);
        for (int l = 1; l < 16; l++)
        {
            mx = MathF.Max(mx, mxLanes.GetElement(l));
            my = MathF.Max(my, myLanes.GetElement(l));
        }

        double sx = 0, sy = 0, u = 0;
        for (int l = 0; l < 16; l++)
        {
            double cx = Math.Exp(((double)mxLanes.GetElement(l) - mx) * invT);
            double cy = Math.Exp(((double)myLanes.GetElement(l) - my) * invT);
            if (cx != 0)
            {
                sx += cx * sxLanes.GetElement(l);
                u += cx * uLanes.GetElement(l);
            }
            else if (uLanes.GetElement(l) == float.PositiveInfinity)
            {
                // The reference bans a token the policy allows in a lane too far below the row's maximum to weigh
                // anything: p is still > 0 there, so KL = +∞.
                u = double.PositiveInfinity;
            }

            if (cy != 0) sy += cy * syLanes.GetElement(l);
        }

        // KL = (E_p[x − y − offset] + offset − (mx − my))/T − log Sx + log Sy.
        double kl = (u / sx + (offset - ((double)mx - my))) * invT - Math.Log(sx) + Math.Log(sy);
        // A lane far below a row's maximum gets weight 0 above, NaN sums included (the block maxima use MaxNative,
        // which drops NaN), so the lanes are tested directly.
        bool suspect = double.IsNaN(kl) || double.IsNaN(sx) || double.IsNaN(sy)
            || !float.IsFinite(mx) || !float.IsFinite(my) || mx == float.MinValue || my == float.MinValue
            || !Vector512.EqualsAll(sxLanes, sxLanes) || !Vector512.EqualsAll(syLanes, syLanes) || !Vector512.EqualsAll(uLanes, uLanes);
        return new Result { Kl = kl, Suspect = suspect };
    }
}
