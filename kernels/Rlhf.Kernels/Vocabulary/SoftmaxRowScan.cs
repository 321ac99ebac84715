using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>Compile-time switch: the JIT specialises generic code per struct and drops the dead branch.</summary>
internal interface IFlag
{
    static abstract bool On { get; }
}

internal readonly struct Enabled : IFlag
{
    public static bool On => true;
}

internal readonly struct Disabled : IFlag
{
    public static bool On => false;
}

/// <summary>Log-sum-exp and entropy of one row of x/T, from one streaming read.</summary>
internal struct RowMoments
{
    /// <summary>Largest raw logit of the row (before dividing by T).</summary>
    public float Max;

    /// <summary>log Σ exp((x − Max)/T).</summary>
    public double LogSum;

    /// <summary>Entropy of softmax(x/T) (only when requested).</summary>
    public double Entropy;

    /// <summary>The row may hold NaN, +∞ or only −∞; the caller checks it exactly before using the moments.</summary>
    public bool Suspect;
}

/// <summary>
/// Online softmax statistics over one logits row. Every lane keeps its own running max m, s = Σ e^d and
/// t = Σ e^d·d with d = (x − m)/T ≤ 0, so entropy is H = log S − T/S without the cancellation of lse − Σp·x at
/// large logits. A block of 64 logits rescales the lanes only when its max beats theirs (rare after the
/// first blocks), so the common path is one exp, one add and (for entropy) one FMA per logit.
/// </summary>
internal static class SoftmaxRowScan
{
    private const int Block = 4 * 16;

    /// <summary>False scans every row clamped, as before the unclamped pass existed: only for the benchmarks to
    /// measure that pass against in the same run (results agree either way).</summary>
    internal static bool UnclampedPass = true;

    /// <remarks>
    /// Rows are first scanned without clamping the exp arguments at <see cref="FastExp.MinArgument"/> (one vector
    /// operation of ~14 per 16 logits; the scan is compute-bound on one thread). With AVX-512's vscalefps the fast exp
    /// gives arguments below the range their tiny or zero value, or a non-finite one, never a wrong finite value: a −∞
    /// logit (a banned token) adds 0 to the sum or makes it NaN, and makes the entropy's Σ e·d NaN (0·(−∞)). So every
    /// row the unclamped scan gets wrong comes back suspect, and those rows are scanned again clamped, whose result
    /// stands: rows with banned tokens cost two scans when the entropy is wanted, as in <see cref="KullbackLeiblerRowScan"/>.
    /// </remarks>
    public static RowMoments Scan<TEntropy>(ReadOnlySpan<float> row, float invT)
        where TEntropy : struct, IFlag
    {
        // Rows shorter than a vector are scanned as one vector padded with −∞ (probability 0, never a lane max), clamped.
        if (row.Length < 16) return Scan<TEntropy, Enabled>(Padded(row, stackalloc float[16]), invT);
        if (Avx512F.IsSupported && UnclampedPass)
        {
            var unclamped = Scan<TEntropy, Disabled>(row, invT);
            if (!unclamped.Suspect) return unclamped;
        }

        return Scan<TEntropy, Enabled>(row, invT);
    }

    internal static RowMoments Scan<TEntropy, TClamped>(ReadOnlySpan<float> row, float invT)
        where TEntropy : struct, IFlag
        where TClamped : struct, IFlag
        => invT == 1f ? Scan<TEntropy, Disabled, TClamped>(row, invT) : Scan<TEntropy, Enabled, TClamped>(row, invT);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static RowMoments Scan<TEntropy, TScaled, TClamped>(ReadOnlySpan<float> row, float invT)
        where TEntropy : struct, IFlag
        where TScaled : struct, IFlag
        where TClamped : struct, IFlag
    {
        // All state stays in locals written out in this one method: passing it by ref to a helper that is not
        // inlined would pin it to the stack and cost a load and a store per vector.
        ref float x = ref MemoryMarshal.GetReference(row);
        int n = row.Length;
        var vInvT = Vector512.Create(invT);
        var floor = Vector512.Create(FastExp.MinArgument);
        // MinValue, not −∞: a lane that has only seen −∞ then rescales by exp(finite) instead of exp(NaN).
        var m = Vector512.Create(float.MinValue);
        var sa = Vector512<float>.Zero;
        var sb = Vector512<float>.Zero;
        var ta = Vector512<float>.Zero;
        var tb = Vector512<float>.Zero;

        int j = 0;
        for (; j <= n - Block; j += Block)
        {
            var x0 = Vector512.LoadUnsafe(ref x, (nuint)j);
            var x1 = Vector512.LoadUnsafe(ref x, (nuint)(j + 16));
            var x2 = Vector512.LoadUnsafe(ref x, (nuint)(j + 32));
            var x3 = Vector512.LoadUnsafe(ref x, (nuint)(j + 48));
            var blockMax = Vector512.MaxNative(Vector512.MaxNative(x0, x1), Vector512.MaxNative(x2, x3));
            if (Vector512.GreaterThanAny(blockMax, m))
            {
                var newMax = Vector512.Max(m, blockMax);
                // delta ≤ 0; clamping it only changes terms already below e^−86 of the lane's sum.
                var delta = Vector512.Max(Scale<TScaled>(m - newMax, vInvT), floor);
                var c = FastExp.Exp(delta);
                if (TEntropy.On)
                {
                    // Σ e^(d+δ)·(d+δ) = e^δ·(t + δ·s)
                    ta = c * Vector512.FusedMultiplyAdd(delta, sa, ta);
                    tb = c * Vector512.FusedMultiplyAdd(delta, sb, tb);
                }

                sa *= c;
                sb *= c;
                m = newMax;
            }

            var d0 = ClampIf<TClamped>(Scale<TScaled>(x0 - m, vInvT), floor);
            var d1 = ClampIf<TClamped>(Scale<TScaled>(x1 - m, vInvT), floor);
            var d2 = ClampIf<TClamped>(Scale<TScaled>(x2 - m, vInvT), floor);
            var d3 = ClampIf<TClamped>(Scale<TScaled>(x3 - m, vInvT), floor);
            var e0 = FastExp.Exp(d0);
            var e1 = FastExp.Exp(d1);
            var e2 = FastExp.Exp(d2);
            var e3 = FastExp.Exp(d3);
            sa += e0 + e2;
            sb += e1 + e3;
            if (TEntropy.On)
            {
                ta = Vector512.FusedMultiplyAdd(e0, d0, Vector512.FusedMultiplyAdd(e2, d2, ta));
                tb = Vector512.FusedMultiplyAdd(e1, d1, Vector512.FusedMultiplyAdd(e3, d3, tb));
            }
        }

        // The last < 64 logits, 16 at a time; the final partial vector is padded with −∞ (probability 0,
        // never a lane max), so these are always clamped (at most four vectors).
        for (; j < n; j += 16)
        {
            var v = j <= n - 16 ? Vector512.LoadUnsafe(ref x, (nuint)j) : LoadLast(ref x, n, j);

            if (Vector512.GreaterThanAny(v, m))
            {
                var newMax = Vector512.Max(m, v);
                var delta = Vector512.Max(Scale<TScaled>(m - newMax, vInvT), floor);
                var c = FastExp.Exp(delta);
                if (TEntropy.On)
                {
                    ta = c * Vector512.FusedMultiplyAdd(delta, sa, ta);
                    tb = c * Vector512.FusedMultiplyAdd(delta, sb, tb);
                }

                sa *= c;
                sb *= c;
                m = newMax;
            }

            var d = Clamp(Scale<TScaled>(v - m, vInvT), floor);
            var e = FastExp.Exp(d);
            sa += e;
            if (TEntropy.On) ta = Vector512.FusedMultiplyAdd(e, d, ta);
        }

        return Combine<TEntropy>(m, sa + sb, ta + tb, invT);
    }

    /// <summary><paramref name="row"/> (shorter than 16) copied into <paramref name="buffer"/> and padded with −∞.</summary>
    public static ReadOnlySpan<float> Padded(ReadOnlySpan<float> row, Span<float> buffer)
    {
        buffer.Fill(float.NegativeInfinity);
        row.CopyTo(buffer);
        return buffer;
    }

    /// <summary>
    /// Logits [j, n) of a row with n ≥ 16 and n − j &lt; 16, in the top lanes of the row's last vector; the lanes below
    /// (already scanned) are −∞. Loading the last whole vector instead of copying into a stack buffer keeps calls and
    /// stack buffers out of the scan loops' method, where they made the JIT keep the accumulators in memory.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadLast(ref float row, int n, int j)
    {
        var v = Vector512.LoadUnsafe(ref row, (nuint)(n - 16));
        var fresh = Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(16 - (n - j)));
        return Vector512.ConditionalSelect(fresh.AsSingle(), v, Vector512.Create(float.NegativeInfinity));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scale<TScaled>(Vector512<float> v, Vector512<float> invT)
        where TScaled : struct, IFlag
        => TScaled.On ? v * invT : v;

    /// <summary>
    /// max(d, floor) that lets NaN through: x86 maxps returns its second operand when either is NaN, so a NaN
    /// logit poisons the row's sum and the row is re-checked exactly, with no separate NaN test per vector
    /// (on Arm, fmax propagates NaN either way). The NaN tests cover this on the block and tail paths.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Clamp(Vector512<float> d, Vector512<float> floor) => Vector512.MaxNative(floor, d);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ClampIf<TClamped>(Vector512<float> d, Vector512<float> floor)
        where TClamped : struct, IFlag
        => TClamped.On ? Clamp(d, floor) : d;

    private static RowMoments Combine<TEntropy>(Vector512<float> m, Vector512<float> s, Vector512<float> t, float invT)
        where TEntropy : struct, IFlag
    {
        float max = m.GetElement(0);
        for (int l = 1; l < 16; l++) max = MathF.Max(max, m.GetElement(l));
        double sum = 0, tsum = 0;
        for (int l = 0; l < 16; l++)
        {
            double delta = ((double)m.GetElement(l) - max) * invT;
            double c = Math.Exp(delta);
            if (c == 0) continue;
            sum += c * s.GetElement(l);
            if (TEntropy.On) tsum += c * (t.GetElement(l) + delta * s.GetElement(l));
        }

        double logSum = Math.Log(sum);
        double entropy = TEntropy.On ? logSum - tsum / sum : 0;
        return new RowMoments
        {
            Max = max,
            LogSum = logSum,
            Entropy = entropy,
            // A lane far below the row's maximum gets weight 0 above, NaN sums included (the block maxima use
            // MaxNative, which drops NaN), so its lanes are tested directly.
            Suspect = !float.IsFinite(max) || max == float.MinValue || double.IsNaN(logSum) || double.IsNaN(entropy)
                || !Vector512.EqualsAll(s, s) || (TEntropy.On && !Vector512.EqualsAll(t, t)),
        };
    }
}
