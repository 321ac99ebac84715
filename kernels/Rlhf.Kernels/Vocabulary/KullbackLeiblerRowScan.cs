using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// KL(p‖q) of one pair of rows, p = softmax(x/T), q = softmax(y/T), from one streaming read of both:
/// KL = Σ p·(x − y)/T − lse(x/T) + lse(y/T). Per lane it keeps the running maxima and exp-sums of x and y and
/// u = Σ e^((x−mx)/T)·(x − y − offset), which only needs rescaling when mx moves. x − y is exact when the two
/// models' logits are close (Sterbenz), the usual case for a policy tuned from its reference; a constant shift s
/// between them costs at most ulp(s)/2 per logit (no rescaling formula can do better once x − y is rounded).
/// Subtracting offset = x − y at the first column keeps u centred, so the sums lose nothing to the shift itself.
/// </summary>
internal static class KullbackLeiblerRowScan
{
    public struct Result
    {
        public double Kl;
        public bool Suspect;
    }

    public static Result Scan(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, float invT)
        => invT == 1f ? Scan<Disabled>(policy, reference, invT) : Scan<Enabled>(policy, reference, invT);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Result Scan<TScaled>(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, float invT)
        where TScaled : struct, IFlag
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
        var negInf = Vector512.Create(float.NegativeInfinity);
        var mx = Vector512.Create(float.MinValue);
        var my = mx;
        var sx = Vector512<float>.Zero;
        var sy = Vector512<float>.Zero;
        var u = Vector512<float>.Zero;

        Span<float> tail = stackalloc float[32];
        for (int j = 0; j < n; j += 16)
        {
            Vector512<float> vx, vy;
            if (j <= n - 16)
            {
                vx = Vector512.LoadUnsafe(ref x, (nuint)j);
                vy = Vector512.LoadUnsafe(ref y, (nuint)j);
            }
            else
            {
                // −∞ padding: probability 0 under both, so it adds nothing.
                tail.Fill(float.NegativeInfinity);
                policy.Slice(j).CopyTo(tail);
                reference.Slice(j).CopyTo(tail.Slice(16));
                vx = Vector512.Create((ReadOnlySpan<float>)tail);
                vy = Vector512.Create((ReadOnlySpan<float>)tail.Slice(16));
            }

            if (Vector512.GreaterThanAny(vx, mx))
            {
                var newMax = Vector512.Max(mx, vx);
                var c = FastExp.Exp(Vector512.Max(Scale<TScaled>(mx - newMax, vInvT), floor));
                sx *= c;
                u *= c;
                mx = newMax;
            }

            if (Vector512.GreaterThanAny(vy, my))
            {
                var newMax = Vector512.Max(my, vy);
                sy *= FastExp.Exp(Vector512.Max(Scale<TScaled>(my - newMax, vInvT), floor));
                my = newMax;
            }

            // NaN logits pass the clamp and poison sx or sy, which flags the row for the exact check.
            var ex = FastExp.Exp(SoftmaxRowScan.Clamp(Scale<TScaled>(vx - mx, vInvT), floor));
            var ey = FastExp.Exp(SoftmaxRowScan.Clamp(Scale<TScaled>(vy - my, vInvT), floor));
            sx += ex;
            sy += ey;
            // A token the policy bans adds exactly 0 (not 0·∞); one only the reference bans adds +∞, as KL should.
            var w = Vector512.ConditionalSelect(Vector512.Equals(vx, negInf), Vector512<float>.Zero, (vx - vy) - vOffset);
            u = Vector512.FusedMultiplyAdd(ex, w, u);
        }

        return Combine(mx, sx, my, sy, u, invT, offset);
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

            if (cy != 0) sy += cy * syLanes.GetElement(l);
        }

        // KL = (E_p[x − y − offset] + offset − (mx − my))/T − log Sx + log Sy.
        double kl = (u / sx + (offset - ((double)mx - my))) * invT - Math.Log(sx) + Math.Log(sy);
        bool suspect = double.IsNaN(kl) || double.IsNaN(sx) || double.IsNaN(sy)
            || !float.IsFinite(mx) || !float.IsFinite(my) || mx == float.MinValue || my == float.MinValue;
        return new Result { Kl = kl, Suspect = suspect };
    }
}
