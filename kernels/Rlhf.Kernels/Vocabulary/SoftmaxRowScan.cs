using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static RowMoments Scan<TEntropy>(ReadOnlySpan<float> row, float invT)
        where TEntropy : struct, IFlag
    {
        ref float x = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(row);
        int n = row.Length;
        var vInvT = Vector512.Create(invT);
        // MinValue, not −∞: a lane that has only seen −∞ then rescales by exp(finite) instead of exp(NaN).
        var m = Vector512.Create(float.MinValue);
        var sa = Vector512<float>.Zero;
        var sb = Vector512<float>.Zero;
        var ta = Vector512<float>.Zero;
        var tb = Vector512<float>.Zero;
        var invalid = Vector512<float>.Zero;

        int j = 0;
        for (; j <= n - Block; j += Block)
        {
            var x0 = Vector512.LoadUnsafe(ref x, (nuint)j);
            var x1 = Vector512.LoadUnsafe(ref x, (nuint)(j + 16));
            var x2 = Vector512.LoadUnsafe(ref x, (nuint)(j + 32));
            var x3 = Vector512.LoadUnsafe(ref x, (nuint)(j + 48));
            var blockMax = Vector512.MaxNative(Vector512.MaxNative(x0, x1), Vector512.MaxNative(x2, x3));
            // NaN anywhere (or +∞ − ∞) makes the sum NaN; false alarms are settled by the exact re-check.
            invalid |= Vector512.IsNaN((x0 + x1) + (x2 + x3));
            if (Vector512.GreaterThanAny(blockMax, m))
                Rescale<TEntropy>(ref m, blockMax, vInvT, ref sa, ref ta, ref sb, ref tb);
            Accumulate<TEntropy>(x0, m, vInvT, ref sa, ref ta);
            Accumulate<TEntropy>(x1, m, vInvT, ref sb, ref tb);
            Accumulate<TEntropy>(x2, m, vInvT, ref sa, ref ta);
            Accumulate<TEntropy>(x3, m, vInvT, ref sb, ref tb);
        }

        for (; j <= n - 16; j += 16)
            Step<TEntropy>(Vector512.LoadUnsafe(ref x, (nuint)j), ref m, vInvT, ref sa, ref ta, ref sb, ref tb, ref invalid);

        if (j < n)
        {
            // −∞ padding has probability 0 and never raises a lane max.
            Span<float> tail = stackalloc float[16];
            tail.Fill(float.NegativeInfinity);
            row.Slice(j).CopyTo(tail);
            Step<TEntropy>(Vector512.Create((ReadOnlySpan<float>)tail), ref m, vInvT, ref sa, ref ta, ref sb, ref tb, ref invalid);
        }

        return Combine<TEntropy>(m, sa + sb, ta + tb, invT, invalid);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TEntropy>(
        Vector512<float> v, ref Vector512<float> m, Vector512<float> vInvT,
        ref Vector512<float> sa, ref Vector512<float> ta, ref Vector512<float> sb, ref Vector512<float> tb,
        ref Vector512<float> invalid)
        where TEntropy : struct, IFlag
    {
        invalid |= Vector512.IsNaN(v);
        if (Vector512.GreaterThanAny(v, m))
            Rescale<TEntropy>(ref m, v, vInvT, ref sa, ref ta, ref sb, ref tb);
        Accumulate<TEntropy>(v, m, vInvT, ref sa, ref ta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate<TEntropy>(Vector512<float> v, Vector512<float> m, Vector512<float> vInvT, ref Vector512<float> s, ref Vector512<float> t)
        where TEntropy : struct, IFlag
    {
        var d = Vector512.MaxNative((v - m) * vInvT, Vector512.Create(FastExp.MinArgument));
        var e = FastExp.Exp(d);
        s += e;
        if (TEntropy.On) t = Vector512.FusedMultiplyAdd(e, d, t);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Rescale<TEntropy>(
        ref Vector512<float> m, Vector512<float> candidate, Vector512<float> vInvT,
        ref Vector512<float> sa, ref Vector512<float> ta, ref Vector512<float> sb, ref Vector512<float> tb)
        where TEntropy : struct, IFlag
    {
        var newMax = Vector512.Max(m, candidate);
        // delta ≤ 0; clamping it only changes terms already below e^−86 of the lane's sum.
        var delta = Vector512.Max((m - newMax) * vInvT, Vector512.Create(FastExp.MinArgument));
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

    private static RowMoments Combine<TEntropy>(Vector512<float> m, Vector512<float> s, Vector512<float> t, float invT, Vector512<float> invalid)
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
        return new RowMoments
        {
            Max = max,
            LogSum = logSum,
            Entropy = TEntropy.On ? logSum - tsum / sum : 0,
            Suspect = invalid != Vector512<float>.Zero || !float.IsFinite(max) || max == float.MinValue || double.IsNaN(logSum),
        };
    }
}
