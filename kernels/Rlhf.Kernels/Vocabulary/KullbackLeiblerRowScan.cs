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
    private const int Block = 2 * 16;

    public struct Result
    {
        public double Kl;
        public bool Suspect;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Result Scan(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, float invT)
    {
        ref float x = ref MemoryMarshal.GetReference(policy);
        ref float y = ref MemoryMarshal.GetReference(reference);
        int n = policy.Length;
        float offset0 = policy[0] - reference[0];
        float offset = float.IsFinite(offset0) ? offset0 : 0f;
        var state = new State
        {
            InvT = Vector512.Create(invT),
            Offset = Vector512.Create(offset),
            Mx = Vector512.Create(float.MinValue),
            My = Vector512.Create(float.MinValue),
        };

        int j = 0;
        for (; j <= n - Block; j += Block)
        {
            var x0 = Vector512.LoadUnsafe(ref x, (nuint)j);
            var x1 = Vector512.LoadUnsafe(ref x, (nuint)(j + 16));
            var y0 = Vector512.LoadUnsafe(ref y, (nuint)j);
            var y1 = Vector512.LoadUnsafe(ref y, (nuint)(j + 16));
            state.Invalid |= Vector512.IsNaN((x0 + x1) + (y0 + y1));
            state.Raise(Vector512.MaxNative(x0, x1), Vector512.MaxNative(y0, y1));
            state.Accumulate(x0, y0);
            state.Accumulate(x1, y1);
        }

        for (; j <= n - 16; j += 16)
            state.Step(Vector512.LoadUnsafe(ref x, (nuint)j), Vector512.LoadUnsafe(ref y, (nuint)j));

        if (j < n)
        {
            Span<float> tail = stackalloc float[32];
            tail.Fill(float.NegativeInfinity);
            policy.Slice(j).CopyTo(tail);
            reference.Slice(j).CopyTo(tail.Slice(16));
            state.Step(Vector512.Create((ReadOnlySpan<float>)tail), Vector512.Create((ReadOnlySpan<float>)tail.Slice(16)));
        }

        return state.Combine(invT, offset);
    }

    private struct State
    {
        public Vector512<float> InvT, Offset, Mx, My, Sx, Sy, U, Invalid;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step(Vector512<float> vx, Vector512<float> vy)
        {
            Invalid |= Vector512.IsNaN(vx + vy);
            Raise(vx, vy);
            Accumulate(vx, vy);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Raise(Vector512<float> candidateX, Vector512<float> candidateY)
        {
            if (Vector512.GreaterThanAny(candidateX, Mx)) RaiseX(candidateX);
            if (Vector512.GreaterThanAny(candidateY, My)) RaiseY(candidateY);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void RaiseX(Vector512<float> candidate)
        {
            var newMax = Vector512.Max(Mx, candidate);
            var c = FastExp.Exp(Vector512.Max((Mx - newMax) * InvT, Vector512.Create(FastExp.MinArgument)));
            Sx *= c;
            U *= c;
            Mx = newMax;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void RaiseY(Vector512<float> candidate)
        {
            var newMax = Vector512.Max(My, candidate);
            Sy *= FastExp.Exp(Vector512.Max((My - newMax) * InvT, Vector512.Create(FastExp.MinArgument)));
            My = newMax;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Accumulate(Vector512<float> vx, Vector512<float> vy)
        {
            var floor = Vector512.Create(FastExp.MinArgument);
            var ex = FastExp.Exp(Vector512.MaxNative((vx - Mx) * InvT, floor));
            var ey = FastExp.Exp(Vector512.MaxNative((vy - My) * InvT, floor));
            Sx += ex;
            Sy += ey;
            // A token the policy bans adds exactly 0 (not 0·∞); one only the reference bans adds +∞, as KL should.
            var w = Vector512.ConditionalSelect(
                Vector512.Equals(vx, Vector512.Create(float.NegativeInfinity)), Vector512<float>.Zero, (vx - vy) - Offset);
            U = Vector512.FusedMultiplyAdd(ex, w, U);
        }

        public readonly Result Combine(float invT, float offset)
        {
            float mx = Mx.GetElement(0), my = My.GetElement(0);
            for (int l = 1; l < 16; l++)
            {
                mx = MathF.Max(mx, Mx.GetElement(l));
                my = MathF.Max(my, My.GetElement(l));
            }

            double sx = 0, sy = 0, u = 0;
            for (int l = 0; l < 16; l++)
            {
                double cx = Math.Exp(((double)Mx.GetElement(l) - mx) * invT);
                double cy = Math.Exp(((double)My.GetElement(l) - my) * invT);
                if (cx != 0)
                {
                    sx += cx * Sx.GetElement(l);
                    u += cx * U.GetElement(l);
                }

                if (cy != 0) sy += cy * Sy.GetElement(l);
            }

            // KL = (E_p[x − y − offset] + offset − (mx − my))/T − log Sx + log Sy.
            double kl = (u / sx + (offset - ((double)mx - my))) * invT - Math.Log(sx) + Math.Log(sy);
            bool suspect = Invalid != Vector512<float>.Zero || double.IsNaN(kl)
                || !float.IsFinite(mx) || !float.IsFinite(my) || mx == float.MinValue || my == float.MinValue;
            return new Result { Kl = kl, Suspect = suspect };
        }
    }
}
