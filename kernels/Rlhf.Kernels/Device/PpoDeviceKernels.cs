using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Rlhf.Kernels.Ppo;
using R = Rlhf.Kernels.Device.PpoDeviceReduction;

namespace Rlhf.Kernels.Device;

/// <summary>
/// The PPO kernels on an ILGPU accelerator (written for CUDA; tested on ILGPU's CPU accelerator against the span
/// kernels in <see cref="Rlhf.Kernels.Ppo"/>). Same formulas, layouts ([B, T] row-major, float 0/1 masks),
/// validation and masked-token semantics as the CPU path; see <see cref="PolicyLoss"/>, <see cref="ValueLoss"/>,
/// <see cref="PpoRewards"/>, <see cref="Gae"/> and <see cref="MaskedWhitening"/> there for the exact definitions.
/// Reductions are deterministic (fixed grid, tree per group, partials summed on the host in order).
/// One instance is not safe for concurrent use (it owns one partials buffer); loaded kernels are reused.
/// </summary>
public sealed class DevicePpoKernels : IDisposable
{
    private const int M = R.MaxGroupSize;

    private readonly Accelerator accelerator;
    private readonly R reduction;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossArgs> policy;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossArgs> value;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, MomentArgs> moments;
    private readonly Action<Index1D, ArrayView<float>, float> scale;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, WhitenArgs> whiten;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> klPenalty;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> addScores;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GaeArgs> gae;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> difference;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> k3;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> gatherRows;

    /// <param name="device">The accelerator to run on.</param>
    /// <param name="groupSize">Threads per group for reductions (0: min(256, the device limit)); rounded down to a power of two.</param>
    public DevicePpoKernels(KernelDevice device, int groupSize = 0)
    {
        accelerator = device.Accelerator;
        reduction = new R(device, groupSize);
        policy = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossArgs>(PolicyKernel);
        value = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossArgs>(ValueKernel);
        moments = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MomentArgs>(MomentsKernel);
        scale = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ScaleKernel);
        whiten = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, WhitenArgs>(WhitenKernel);
        klPenalty = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(KlPenaltyKernel);
        addScores = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(AddScoresKernel);
        gae = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GaeArgs>(GaeKernel);
        difference = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(DifferenceKernel);
        k3 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(K3Kernel);
        gatherRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(GatherRowsKernel);
    }

    /// <summary>Threads per group used by the reductions.</summary>
    public int GroupSize => reduction.GroupSize;

    /// <summary>Device version of <see cref="Ppo.PolicyLoss.Compute"/> (same arguments, statistics, gradient and rejected
    /// inputs: NaN, ±∞ advantages, +∞ log-probs, −∞ old log-probs at valid tokens).</summary>
    public PolicyLossStats PolicyLoss(
        ArrayView<float> newLogProbs, ArrayView<float> oldLogProbs, ArrayView<float> advantages, ArrayView<float> mask,
        ArrayView<float> gradNewLogProbs, int batch, int steps, float clipRange, float gradientScale = 1f)
    {
        int n = PpoArgs.Shape(batch, steps);
        Len(newLogProbs, n, nameof(newLogProbs));
        Len(oldLogProbs, n, nameof(oldLogProbs));
        Len(advantages, n, nameof(advantages));
        Len(mask, n, nameof(mask));
        Len(gradNewLogProbs, n, nameof(gradNewLogProbs));
        PpoArgs.NonNegative(clipRange, nameof(clipRange));
        PpoArgs.Finite(gradientScale, nameof(gradientScale));

        var config = reduction.Config(n);
        policy(config, newLogProbs, oldLogProbs, advantages, mask, gradNewLogProbs, reduction.Partials,
            new LossArgs { N = n, A = 1f - clipRange, B = 1f + clipRange });
        Span<double> s = stackalloc double[5];
        reduction.Sum(config, 5, s);
        // As on the CPU: a rejected input (NaN, ±∞ advantage, +∞ or old −∞ log-prob) leaves one of these sums NaN or ±∞,
        // PTX's NaN-dropping min/max included (l2 = −A·clip(ratio) is then ±∞ or NaN itself); the host re-check is exact.
        if (!double.IsFinite(s[0]) || !double.IsFinite(s[2]) || !double.IsFinite(s[3]))
        {
            Ppo.PolicyLoss.ThrowOnRejectedInput(steps, reduction.ToHost(mask), reduction.ToHost(newLogProbs),
                reduction.ToHost(oldLogProbs), reduction.ToHost(advantages));
        }

        int valid = (int)s[4];
        if (valid == 0) return new PolicyLossStats(0f, 0f, 0f, 0f, 0);
        scale(n, gradNewLogProbs, gradientScale / valid);
        accelerator.Synchronize();
        return new PolicyLossStats((float)(s[0] / valid), (float)(s[1] / valid), (float)(0.5 * s[2] / valid), (float)(s[3] / valid), valid);
    }

    /// <summary>Device version of <see cref="Ppo.ValueLoss.Compute"/>: clipRange = +∞ turns clipping off, and then the old
    /// values are not used (the unclipped loss and gradient, ±∞ old values included) except that a NaN one still throws.</summary>
    public ValueLossStats ValueLoss(
        ArrayView<float> values, ArrayView<float> oldValues, ArrayView<float> returns, ArrayView<float> mask,
        ArrayView<float> gradValues, int batch, int steps, float clipRange, float gradientScale = 1f)
    {
        int n = PpoArgs.Shape(batch, steps);
        Len(values, n, nameof(values));
        Len(oldValues, n, nameof(oldValues));
        Len(returns, n, nameof(returns));
        Len(mask, n, nameof(mask));
        Len(gradValues, n, nameof(gradValues));
        PpoArgs.NonNegative(clipRange, nameof(clipRange));
        PpoArgs.Finite(gradientScale, nameof(gradientScale));

        var config = reduction.Config(n);
        value(config, values, oldValues, returns, mask, gradValues, reduction.Partials, new LossArgs { N = n, A = clipRange });
        Span<double> s = stackalloc double[4];
        reduction.Sum(config, 4, s);
        if (double.IsNaN(s[0]) || double.IsNaN(s[2]))
        {
            PpoArgs.ThrowOnNaN(steps, reduction.ToHost(mask), reduction.ToHost(values), nameof(values),
                reduction.ToHost(oldValues), nameof(oldValues), reduction.ToHost(returns), nameof(returns));
        }

        int valid = (int)s[3];
        if (valid == 0) return new ValueLossStats(0f, 0f, 0f, 0);
        scale(n, gradValues, gradientScale / valid);
        accelerator.Synchronize();
        return new ValueLossStats((float)(0.5 * s[0] / valid), (float)(s[1] / valid), (float)(s[2] / valid), valid);
    }

    /// <summary>Device version of <see cref="PpoRewards.Compute"/> (NaN inputs propagate here instead of throwing).</summary>
    public void Rewards(ArrayView<float> kl, ArrayView<float> scores, ArrayView<float> mask, ArrayView<float> rewards, int batch, int steps, float klCoef)
    {
        int n = PpoArgs.Shape(batch, steps);
        Len(kl, n, nameof(kl));
        Len(scores, batch, nameof(scores), "batch");
        Len(mask, n, nameof(mask));
        Len(rewards, n, nameof(rewards));
        PpoArgs.Finite(klCoef, nameof(klCoef));
        PpoArgs.NonNegative(klCoef, nameof(klCoef));
        klPenalty(n, kl, mask, rewards, -klCoef);
        addScores(batch, scores, mask, rewards, steps);
        accelerator.Synchronize();
    }

    /// <summary>Device version of <see cref="Ppo.Gae.Compute"/>: one thread per row runs TRL's sequential reverse scan.
    /// NaN inputs propagate here instead of throwing (finding them would cost a reduction).</summary>
    public void Gae(ArrayView<float> rewards, ArrayView<float> values, ArrayView<float> mask, ArrayView<float> advantages,
        ArrayView<float> returns, int batch, int steps, float gamma, float lambda)
    {
        int n = PpoArgs.Shape(batch, steps);
        Len(rewards, n, nameof(rewards));
        Len(values, n, nameof(values));
        Len(mask, n, nameof(mask));
        Len(advantages, n, nameof(advantages));
        Len(returns, n, nameof(returns));
        PpoArgs.UnitInterval(gamma, nameof(gamma));
        PpoArgs.UnitInterval(lambda, nameof(lambda));
        gae(batch, rewards, values, mask, advantages, returns, new GaeArgs { Steps = steps, Gamma = gamma, Decay = gamma * lambda });
        accelerator.Synchronize();
    }

    /// <summary>Device version of <see cref="MaskedWhitening.Moments"/>.</summary>
    public MaskedMoments Moments(ArrayView<float> x, ArrayView<float> mask)
    {
        if (mask.Length != x.Length) throw new ArgumentException($"mask has {mask.Length} elements but x.Length = {x.Length}.", nameof(mask));
        long n = x.Length;
        var config = reduction.Config(n);
        Span<double> s = stackalloc double[2];
        moments(config, x, mask, reduction.Partials, new MomentArgs { N = (int)n, Centre = 0f, Squares = 0 });
        reduction.Sum(config, 2, s);
        long count = (long)s[1];
        if (count < 2) throw new ArgumentException($"mask has {count} valid entries; the unbiased variance needs at least 2.", nameof(mask));
        if (double.IsNaN(s[0]))
        {
            var hx = reduction.ToHost(x);
            int i = PpoArgs.FirstNaN(hx, reduction.ToHost(mask));
            if (i >= 0) throw new ArgumentException($"x[{i}] = {hx[i]} is not a number.", nameof(x));
        }

        double mean = s[0] / count;
        moments(config, x, mask, reduction.Partials, new MomentArgs { N = (int)n, Centre = (float)mean, Squares = 1 });
        reduction.Sum(config, 2, s);
        double offset = mean - (float)mean;
        return new MaskedMoments(mean, Math.Max(0.0, (s[0] - count * offset * offset) / (count - 1)), (int)count);
    }

    /// <summary>Device version of <see cref="MaskedWhitening.Whiten"/> (destination may be x).</summary>
    public MaskedMoments Whiten(ArrayView<float> x, ArrayView<float> mask, ArrayView<float> destination, bool shiftMean = true)
    {
        if (destination.Length != x.Length)
            throw new ArgumentException($"destination has {destination.Length} elements but x.Length = {x.Length}.", nameof(destination));
        var m = Moments(x, mask);
        float mean = (float)m.Mean;
        whiten((int)x.Length, x, mask, destination, new WhitenArgs
        {
            Mean = mean, Scale = (float)(1.0 / Math.Sqrt(m.Variance + MaskedWhitening.VarianceEpsilon)), AddBack = shiftMean ? 0f : mean,
        });
        accelerator.Synchronize();
        return m;
    }

    /// <summary>
    /// Effectively computes destination[i] = a[i] − b[i] (k1 = log π − log π_ref as <c>KullbackLeibler.K1</c>, or
    /// returns − values). IEEE rules for ±∞ and NaN. destination may be a or b.
    /// </summary>
    public void Difference(ArrayView<float> a, ArrayView<float> b, ArrayView<float> destination)
    {
        int n = (int)a.Length;
        Len(b, n, nameof(b), "a.Length");
        Len(destination, n, nameof(destination), "a.Length");
        if (n > 0) difference(n, a, b, destination);
    }

    /// <summary>
    /// Device version of <c>KullbackLeibler.K3</c>: with u = referenceLogProbs[i] − logProbs[i], effectively computes
    /// destination[i] = e^u − 1 − u, by the series u²·Σ u^k/(k+2)! for |u| &lt; ½ (where the direct form cancels).
    /// NaN propagates; u = −∞ gives +∞.
    /// </summary>
    public void K3(ArrayView<float> logProbs, ArrayView<float> referenceLogProbs, ArrayView<float> destination)
    {
        int n = (int)logProbs.Length;
        Len(referenceLogProbs, n, nameof(referenceLogProbs), "logProbs.Length");
        Len(destination, n, nameof(destination), "logProbs.Length");
        if (n > 0) k3(n, logProbs, referenceLogProbs, destination);
    }

    /// <summary>
    /// Masked sum and count: Σ_{mask[i] ≠ 0} x[i] (float per thread, groups and partials summed as in
    /// <see cref="Moments"/>) and the number of valid entries. Any count is allowed; NaN at a valid entry gives NaN.
    /// </summary>
    public (double Sum, long Count) MaskedSum(ArrayView<float> x, ArrayView<float> mask)
    {
        if (mask.Length != x.Length) throw new ArgumentException($"mask has {mask.Length} elements but x.Length = {x.Length}.", nameof(mask));
        var config = reduction.Config(x.Length);
        Span<double> s = stackalloc double[2];
        moments(config, x, mask, reduction.Partials, new MomentArgs { N = (int)x.Length, Centre = 0f, Squares = 0 });
        reduction.Sum(config, 2, s);
        return (s[0], (long)s[1]);
    }

    /// <summary>
    /// Effectively computes destination[i·rowLength + j] = source[rows[i]·rowLength + j] for i &lt; rows.Length,
    /// j &lt; rowLength (a minibatch's rows of a [batch, rowLength] rollout buffer). The row indices are not checked
    /// here: the caller validates them on the host before uploading.
    /// </summary>
    public void GatherRows(ArrayView<float> source, ArrayView<int> rows, ArrayView<float> destination, int rowLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rowLength);
        long n = rows.Length * rowLength;
        Len(destination, (int)n, nameof(destination), "rows.Length*rowLength");
        if (source.Length % rowLength != 0) throw new ArgumentException($"source has {source.Length} elements, not a multiple of rowLength = {rowLength}.", nameof(source));
        if (n > 0) gatherRows((int)n, source, rows, destination, rowLength);
    }

    public void Dispose() => reduction.Dispose();

    private static void Len(ArrayView<float> view, int expected, string name, string what = "batch*steps")
    {
        if (view.Length != expected) throw new ArgumentException($"{name} has {view.Length} elements but {what} = {expected}.", name);
    }

    // ---- kernels -----------------------------------------------------------------------------------------

    internal struct LossArgs
    {
        public int N;
        public float A, B;
    }

    internal struct MomentArgs
    {
        public int N;
        public float Centre;
        public int Squares;
    }

    internal struct WhitenArgs
    {
        public float Mean, Scale, AddBack;
    }

    internal struct GaeArgs
    {
        public int Steps;
        public float Gamma, Decay;
    }

    // partials per group: Σloss, Σclipped, Σd², Σratio, count. grad is written unnormalised (the host rescales by 1/N).
    private static void PolicyKernel(ArrayView<float> newLp, ArrayView<float> oldLp, ArrayView<float> adv, ArrayView<float> mask,
        ArrayView<float> grad, ArrayView<float> partials, LossArgs p)
    {
        var shared = SharedMemory.Allocate<float>(5 * M);
        int tid = Group.IdxX;
        float loss = 0f, clipped = 0f, kl = 0f, ratioSum = 0f, count = 0f;
        for (int i = Grid.IdxX * Group.DimX + tid; i < p.N; i += Grid.DimX * Group.DimX)
        {
            float g = 0f;
            if (mask[i] != 0f)
            {
                float d = newLp[i] - oldLp[i];
                float a = adv[i];
                float ratio = XMath.Exp(d);
                float l1 = -a * ratio;
                float l2 = -a * XMath.Min(XMath.Max(ratio, p.A), p.B);
                if (l1 >= l2) g = l1;
                // Written out rather than max: PTX max drops NaN and the CPU accelerator's keeps it; a NaN l1 (0·∞)
                // takes l2 and counts clipped, as on the CPU path.
                loss += l1 > l2 ? l1 : l2;
                clipped += l1 >= l2 ? 0f : 1f;
                kl += d * d;
                ratioSum += ratio;
                count += 1f;
            }

            grad[i] = g;
        }

        shared[tid] = loss;
        shared[M + tid] = clipped;
        shared[2 * M + tid] = kl;
        shared[3 * M + tid] = ratioSum;
        shared[4 * M + tid] = count;
        R.GroupSumAndStore(shared, 5, partials);
    }

    // partials per group: Σmax(l1, l2), Σclipped, Σl1, count.
    private static void ValueKernel(ArrayView<float> v, ArrayView<float> oldV, ArrayView<float> ret, ArrayView<float> mask,
        ArrayView<float> grad, ArrayView<float> partials, LossArgs p)
    {
        var shared = SharedMemory.Allocate<float>(4 * M);
        int tid = Group.IdxX;
        float loss = 0f, clipped = 0f, squared = 0f, count = 0f;
        for (int i = Grid.IdxX * Group.DimX + tid; i < p.N; i += Grid.DimX * Group.DimX)
        {
            float g = 0f;
            if (mask[i] != 0f)
            {
                float vi = v[i], old = oldV[i], r = ret[i];
                // clipRange = +∞ is clipping off: vc = v whatever the old value (old ± ∞ would be NaN for an infinite one).
                float vc = p.A < float.PositiveInfinity ? XMath.Min(XMath.Max(vi, old - p.A), old + p.A) : vi;
                float e1 = vi - r, e2 = vc - r;
                float l1 = e1 * e1, l2 = e2 * e2;
                if (l1 >= l2) g = e1;
                loss += XMath.Max(l1, l2);
                clipped += l2 > l1 ? 1f : 0f;
                // PTX's min.f32/max.f32 return the other operand for NaN, so a NaN old value would leave every sum
                // finite on CUDA (ILGPU's CPU accelerator propagates it): raise the host's alarm explicitly.
                squared += XMath.IsNaN(old) ? float.NaN : l1;
                count += 1f;
            }

            grad[i] = g;
        }

        shared[tid] = loss;
        shared[M + tid] = clipped;
        shared[2 * M + tid] = squared;
        shared[3 * M + tid] = count;
        R.GroupSumAndStore(shared, 4, partials);
    }

    // partials per group: Σx (or Σ(x − centre)²), count.
    private static void MomentsKernel(ArrayView<float> x, ArrayView<float> mask, ArrayView<float> partials, MomentArgs p)
    {
        var shared = SharedMemory.Allocate<float>(2 * M);
        int tid = Group.IdxX;
        float sum = 0f, count = 0f;
        for (int i = Grid.IdxX * Group.DimX + tid; i < p.N; i += Grid.DimX * Group.DimX)
        {
            if (mask[i] == 0f) continue;
            float d = x[i] - p.Centre;
            sum += p.Squares != 0 ? d * d : d;
            count += 1f;
        }

        shared[tid] = sum;
        shared[M + tid] = count;
        R.GroupSumAndStore(shared, 2, partials);
    }

    private static void ScaleKernel(Index1D i, ArrayView<float> x, float factor) => x[i] *= factor;

    private static void WhitenKernel(Index1D i, ArrayView<float> x, ArrayView<float> mask, ArrayView<float> dest, WhitenArgs p) =>
        dest[i] = mask[i] != 0f ? (x[i] - p.Mean) * p.Scale + p.AddBack : 0f;

    private static void KlPenaltyKernel(Index1D i, ArrayView<float> kl, ArrayView<float> mask, ArrayView<float> rewards, float negCoef) =>
        rewards[i] = mask[i] != 0f ? negCoef * kl[i] : 0f;

    private static void AddScoresKernel(Index1D row, ArrayView<float> scores, ArrayView<float> mask, ArrayView<float> rewards, int steps)
    {
        long o = (long)row.X * steps;
        for (int t = steps - 1; t >= 0; t--)
        {
            if (mask[o + t] != 0f)
            {
                rewards[o + t] += scores[row];
                return;
            }
        }
    }

    private static void DifferenceKernel(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dest) => dest[i] = a[i] - b[i];

    private static void K3Kernel(Index1D i, ArrayView<float> logp, ArrayView<float> reference, ArrayView<float> dest)
    {
        float u = reference[i] - logp[i];
        if (XMath.Abs(u) < 0.5f)
        {
            // (e^u − 1 − u)/u² = Σ u^k/(k + 2)!, k = 0..7, by Horner (as the CPU kernel's series).
            float r = u * (1f / 362880) + 1f / 40320;
            r = r * u + 1f / 5040;
            r = r * u + 1f / 720;
            r = r * u + 1f / 120;
            r = r * u + 1f / 24;
            r = r * u + 1f / 6;
            r = r * u + 0.5f;
            dest[i] = u * u * r;
        }
        else
        {
            dest[i] = XMath.Exp(u) - 1f - u;
        }
    }

    private static void GatherRowsKernel(Index1D i, ArrayView<float> source, ArrayView<int> rows, ArrayView<float> dest, int rowLength)
    {
        int row = i / rowLength, j = i - row * rowLength;
        dest[i] = source[(long)rows[row] * rowLength + j];
    }

    // One thread per row: TRL's reverse scan with masked inputs, the running advantage carried through masked steps.
    private static void GaeKernel(Index1D row, ArrayView<float> r, ArrayView<float> v, ArrayView<float> mask,
        ArrayView<float> adv, ArrayView<float> ret, GaeArgs p)
    {
        long o = (long)row.X * p.Steps;
        float last = 0f, nextValue = 0f;
        for (int t = p.Steps - 1; t >= 0; t--)
        {
            long i = o + t;
            bool valid = mask[i] != 0f;
            float vt = valid ? v[i] : 0f;
            float rt = valid ? r[i] : 0f;
            last = rt + p.Gamma * nextValue - vt + p.Decay * last;
            adv[i] = valid ? last : 0f;
            ret[i] = valid ? last + vt : 0f;
            nextValue = vt;
        }
    }
}
