using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Ppo;

/// <summary>
/// PPO's clipped surrogate objective over [B, T] token log-probabilities (TRL PPOTrainer.loss, policy part),
/// with its gradient w.r.t. the new log-probabilities in the same pass.
/// </summary>
public static unsafe class PolicyLoss
{
    /// <summary>
    /// Effectively computes, per valid token i (mask[i] ≠ 0), ratio = exp(newLogp − oldLogp),
    /// l1 = −A·ratio, l2 = −A·clip(ratio, 1−ε, 1+ε), and returns masked means of max(l1, l2), of [l2 &gt; l1],
    /// of ½(newLogp − oldLogp)² and of ratio. Writes grad[i] = gradientScale·∂Loss/∂newLogp[i]
    /// = gradientScale·(l1 ≥ l2 ? −A·ratio : 0)/N, and 0 at masked tokens (whose inputs are never read into
    /// the result, so NaN padding is harmless). With no valid token everything is 0.
    /// </summary>
    /// <remarks>Layout [B, T] row-major. At a valid token these throw: a NaN in any input, an infinite advantage (PPO's
    /// surrogate is then ±∞ or NaN: TRL's loss would be too), a +∞ log-prob (no log-probability) and an old log-prob of
    /// −∞ (a token the rollout policy could not have sampled: its ratio would be infinite). A new log-prob of −∞ (a token
    /// the new policy bans, as <c>TokenStatistics</c> gives for a −∞ logit) is taken as TRL takes it: ratio 0, so the
    /// token's gradient is 0 and its loss max(−A·0, −A·(1 − ε)), and ApproxKl is +∞. A finite log-ratio above ≈ 88.7
    /// overflows the ratio to +∞ as float32 TRL's does (MeanRatio +∞, the token's loss +∞ for A &lt; 0); for A = 0 the
    /// unclipped term 0·∞ is NaN and the surrogate takes the clipped one (−0), so the token adds 0, counts as clipped
    /// and gets gradient 0, wherever it sits (where TRL's max would give NaN). The sums are only tested for being finite as they come out;
    /// when one is not, the inputs are read again exactly (so ±∞ log-probs and large finite inputs take a slower, still
    /// correct, path). Masked tokens are never read into the result, so NaN or ±∞ padding is harmless.
    /// Deterministic: fixed chunks reduced in order, for any <see cref="KernelParallelism.MaxThreads"/>.</remarks>
    /// <param name="validCount"><see cref="MaskCount.Count"/> of <paramref name="mask"/> when the caller already has it
    /// (several losses over one minibatch); −1, the default, counts here. It is trusted: a wrong count scales the loss and
    /// the gradient wrongly.</param>
    /// <exception cref="ArgumentException">The gradient overlaps an input, lengths ≠ batch·steps, batch or steps ≤ 0, clipRange &lt; 0 or NaN, validCount outside [−1, batch·steps],
    /// or a rejected input at a valid token as above: NaN, ±∞ advantage, +∞ log-prob, −∞ old log-prob (the message
    /// names the argument, index and value).</exception>
    public static PolicyLossStats Compute(
        ReadOnlySpan<float> newLogProbs, ReadOnlySpan<float> oldLogProbs, ReadOnlySpan<float> advantages,
        ReadOnlySpan<float> mask, Span<float> gradNewLogProbs, int batch, int steps, float clipRange,
        float gradientScale = 1f, int validCount = -1)
    {
        int n = PpoArgs.Shape(batch, steps);
        PpoArgs.Length(newLogProbs.Length, n, nameof(newLogProbs));
        PpoArgs.Length(oldLogProbs.Length, n, nameof(oldLogProbs));
        PpoArgs.Length(advantages.Length, n, nameof(advantages));
        PpoArgs.Length(mask.Length, n, nameof(mask));
        PpoArgs.Length(gradNewLogProbs.Length, n, nameof(gradNewLogProbs));
        PpoArgs.Separate(gradNewLogProbs, nameof(gradNewLogProbs), newLogProbs, nameof(newLogProbs));
        PpoArgs.Separate(gradNewLogProbs, nameof(gradNewLogProbs), oldLogProbs, nameof(oldLogProbs));
        PpoArgs.Separate(gradNewLogProbs, nameof(gradNewLogProbs), advantages, nameof(advantages));
        PpoArgs.Separate(gradNewLogProbs, nameof(gradNewLogProbs), mask, nameof(mask));
        PpoArgs.NonNegative(clipRange, nameof(clipRange));
        PpoArgs.Finite(gradientScale, nameof(gradientScale));

        int valid = PpoArgs.ValidCount(validCount, mask, nameof(validCount));
        int chunkLength = ChunkRunner.ChunkLength(n, 16 * 1024);
        int chunks = ChunkRunner.ChunkCount(n, chunkLength);
        Partial* partials = stackalloc Partial[ChunkRunner.MaxChunks];
        fixed (float* pNew = newLogProbs, pOld = oldLogProbs, pAdv = advantages, pMask = mask, pGrad = gradNewLogProbs)
        {
            var body = new Body
            {
                NewLogp = pNew, OldLogp = pOld, Adv = pAdv, Mask = pMask, Grad = pGrad,
                Length = n, ChunkLength = chunkLength, Partials = partials,
                Low = 1f - clipRange, High = 1f + clipRange,
                GradPerToken = valid == 0 ? 0f : gradientScale / valid,
            };
            ChunkRunner.Run(chunks, n, body);
        }

        double loss = 0, clipped = 0, kl = 0, ratioMinusOne = 0;
        for (int c = 0; c < chunks; c++)
        {
            loss += partials[c].Loss;
            clipped += partials[c].Clipped;
            kl += partials[c].Kl;
            ratioMinusOne += partials[c].RatioMinusOne;
        }

        // The alarm: a rejected input makes one of these sums NaN or ±∞ (an infinite advantage makes every product with
        // it ±∞ or NaN, the clipped one included, and an infinite log-prob makes d² +∞ or NaN). It can be false (large
        // finite inputs, a −∞ new log-prob); the exact check then finds nothing and the sums stand.
        if (!double.IsFinite(loss) || !double.IsFinite(kl) || !double.IsFinite(ratioMinusOne))
            ThrowOnRejectedInput(steps, mask, newLogProbs, oldLogProbs, advantages);
        if (valid == 0) return new PolicyLossStats(0f, 0f, 0f, 0f, 0);
        return new PolicyLossStats((float)(loss / valid), (float)(clipped / valid), (float)(0.5 * kl / valid), (float)(1.0 + ratioMinusOne / valid), valid);
    }

    /// <summary>
    /// Throws for the first valid token, in index order, holding an input that <see cref="Compute"/> rejects: a NaN in
    /// any of the three, an infinite advantage, a +∞ log-prob or a −∞ old log-prob (checked in that argument order per
    /// token). Run when a sum came out NaN or ±∞; shared with the device kernel.
    /// </summary>
    internal static void ThrowOnRejectedInput(int steps, ReadOnlySpan<float> mask,
        ReadOnlySpan<float> newLogProbs, ReadOnlySpan<float> oldLogProbs, ReadOnlySpan<float> advantages)
    {
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0f) continue;
            float nw = newLogProbs[i], old = oldLogProbs[i], a = advantages[i];
            if (float.IsNaN(nw)) throw PpoArgs.BadElement(nameof(newLogProbs), i, nw, steps);
            if (float.IsPositiveInfinity(nw)) throw PpoArgs.BadElement(nameof(newLogProbs), i, nw, steps, "is infinite, not a log-probability");
            if (float.IsNaN(old)) throw PpoArgs.BadElement(nameof(oldLogProbs), i, old, steps);
            if (float.IsPositiveInfinity(old)) throw PpoArgs.BadElement(nameof(oldLogProbs), i, old, steps, "is infinite, not a log-probability");
            if (float.IsNegativeInfinity(old))
            {
                throw PpoArgs.BadElement(nameof(oldLogProbs), i, old, steps,
                    "is infinite: the rollout policy could not have sampled this token (its probability ratio would be infinite)");
            }

            if (float.IsNaN(a)) throw PpoArgs.BadElement(nameof(advantages), i, a, steps);
            if (float.IsInfinity(a)) throw PpoArgs.BadElement(nameof(advantages), i, a, steps, "is infinite (PPO's surrogate would be infinite or NaN)");
        }
    }

    /// <summary>d = newLogp − oldLogp and A for 16 tokens, with masked lanes loaded as 0 (NaN padding included), so
    /// loss, KL and gradient are exactly 0 there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> D, Vector512<float> A) LoadValid(float* pNew, float* pOld, float* pAdv, float* pMask, int i)
    {
        var valid = ~Vector512.Equals(Vector512.Load(pMask + i), Vector512<float>.Zero);
        return (PpoMath.LoadValid(pNew + i, valid) - PpoMath.LoadValid(pOld + i, valid), PpoMath.LoadValid(pAdv + i, valid));
    }

    /// <summary>One vector's gradient and statistics from q = ratio − 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(Vector512<float> q, Vector512<float> a, Vector512<float> dd, Vector512<float> lo, Vector512<float> hi,
        Vector512<float> minusGs, float* grad, ref Vector512<float> accLoss, ref Vector512<int> accKept, ref Vector512<float> accKl,
        ref Vector512<float> accRatio)
    {
        // l1 = −p and l2 = −pc with p = A·ratio, pc = A·clip(ratio), so l1 ≥ l2 ⇔ p ≤ pc and max(l1, l2) = −min(p, pc).
        // Native min/max are one instruction each and return their second operand when either is NaN: a NaN A reaches
        // the loss through pc, a NaN ratio reaches Σd² and Σq.
        var p = Vector512.FusedMultiplyAdd(a, q, a);
        var pc = Vector512.FusedMultiplyAdd(a, Vector512.MinNative(hi, Vector512.MaxNative(lo, q)), a);
        var keep = Vector512.LessThanOrEqual(p, pc);
        (keep & (p * minusGs)).Store(grad);
        accLoss += Vector512.MinNative(p, pc);
        // Masked lanes have p = pc = 0 and count as kept; the valid lanes not kept are the clipped ones.
        accKept -= keep.AsInt32();
        accKl += dd;
        accRatio += q;
    }

    private struct Partial
    {
        public double Loss, Clipped, Kl, RatioMinusOne;
    }

    private struct Body : IChunkBody
    {
        public float* NewLogp, OldLogp, Adv, Mask, Grad;
        public int Length, ChunkLength;
        public float Low, High, GradPerToken;
        public Partial* Partials;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            float loss = 0f, clipped = 0f, kl = 0f, qSum = 0f;
            // Locals, not fields: stores through Grad could alias `this`, so field reads would be redone per vector.
            float* pNew = NewLogp, pOld = OldLogp, pAdv = Adv, pMask = Mask, pGrad = Grad;
            if (Vector512.IsHardwareAccelerated)
            {
                // Everything in terms of q = ratio − 1: masked lanes (d = 0) then give q = 0 exactly, so Σq needs no
                // mask, and p = A·ratio = A·q + A costs one FMA like the product it replaces.
                var lo = Vector512.Create(Low - 1f);
                var hi = Vector512.Create(High - 1f);
                var minusGs = Vector512.Create(-GradPerToken);
                var nearZero = Vector512.Create(PpoMath.NearZeroLimit * PpoMath.NearZeroLimit);
                Vector512<float> accLoss = default, accKl = default, accRatio = default;
                var accKept = Vector512<int>.Zero;
                int begin = i;
                // Four vectors per iteration, one branch for the common case (all log-ratios small): independent
                // dependency chains for the core to overlap (10 % faster on one thread than one vector at a time).
                for (; i + 64 <= end; i += 64)
                {
                    if (PpoMath.AllMasked64(pMask + i))
                    {
                        // Padding: gradient 0, and its lanes count as kept as the general path counts them (p = pc = 0);
                        // the sums would only add +0. Nothing else is read.
                        new Span<float>(pGrad + i, 64).Clear();
                        accKept += Vector512.Create(4);
                        continue;
                    }

                    var (d0, a0) = LoadValid(pNew, pOld, pAdv, pMask, i);
                    var (d1, a1) = LoadValid(pNew, pOld, pAdv, pMask, i + 16);
                    var (d2, a2) = LoadValid(pNew, pOld, pAdv, pMask, i + 32);
                    var (d3, a3) = LoadValid(pNew, pOld, pAdv, pMask, i + 48);
                    var dd0 = d0 * d0;
                    var dd1 = d1 * d1;
                    var dd2 = d2 * d2;
                    var dd3 = d3 * d3;
                    // d² doubles as the range test (NaN fails it and takes the general path, which propagates it).
                    // Each vector picks its own path, so the bits equal a one-vector-at-a-time loop's.
                    bool near0 = Vector512.LessThanOrEqualAll(dd0, nearZero);
                    bool near1 = Vector512.LessThanOrEqualAll(dd1, nearZero);
                    bool near2 = Vector512.LessThanOrEqualAll(dd2, nearZero);
                    bool near3 = Vector512.LessThanOrEqualAll(dd3, nearZero);
                    Vector512<float> q0, q1, q2, q3;
                    if (near0 & near1 & near2 & near3)
                    {
                        q0 = PpoMath.ExpM1NearZero(d0);
                        q1 = PpoMath.ExpM1NearZero(d1);
                        q2 = PpoMath.ExpM1NearZero(d2);
                        q3 = PpoMath.ExpM1NearZero(d3);
                    }
                    else
                    {
                        q0 = near0 ? PpoMath.ExpM1NearZero(d0) : PpoMath.Exp(d0) - Vector512<float>.One;
                        q1 = near1 ? PpoMath.ExpM1NearZero(d1) : PpoMath.Exp(d1) - Vector512<float>.One;
                        q2 = near2 ? PpoMath.ExpM1NearZero(d2) : PpoMath.Exp(d2) - Vector512<float>.One;
                        q3 = near3 ? PpoMath.ExpM1NearZero(d3) : PpoMath.Exp(d3) - Vector512<float>.One;
                    }

                    Accumulate(q0, a0, dd0, lo, hi, minusGs, pGrad + i, ref accLoss, ref accKept, ref accKl, ref accRatio);
                    Accumulate(q1, a1, dd1, lo, hi, minusGs, pGrad + i + 16, ref accLoss, ref accKept, ref accKl, ref accRatio);
                    Accumulate(q2, a2, dd2, lo, hi, minusGs, pGrad + i + 32, ref accLoss, ref accKept, ref accKl, ref accRatio);
                    Accumulate(q3, a3, dd3, lo, hi, minusGs, pGrad + i + 48, ref accLoss, ref accKept, ref accKl, ref accRatio);
                }

                for (; i + 16 <= end; i += 16)
                {
                    var (d, a) = LoadValid(pNew, pOld, pAdv, pMask, i);
                    var dd = d * d;
                    var q = Vector512.LessThanOrEqualAll(dd, nearZero) ? PpoMath.ExpM1NearZero(d) : PpoMath.Exp(d) - Vector512<float>.One;
                    Accumulate(q, a, dd, lo, hi, minusGs, pGrad + i, ref accLoss, ref accKept, ref accKl, ref accRatio);
                }

                loss = -Vector512.Sum(accLoss);
                clipped = i - begin - Vector512.Sum(accKept);
                kl = Vector512.Sum(accKl);
                qSum = Vector512.Sum(accRatio);
            }

            for (; i < end; i++)
            {
                if (pMask[i] == 0f)
                {
                    pGrad[i] = 0f;
                    continue;
                }

                float d = pNew[i] - pOld[i];
                float a = pAdv[i];
                float ratio = MathF.Exp(d);
                float l1 = -a * ratio;
                float l2 = -a * Math.Clamp(ratio, Low, High);
                pGrad[i] = l1 >= l2 ? l1 * GradPerToken : 0f;
                // As the vector path's native min: a NaN l1 (0·∞, an overflowed ratio with A = 0) takes l2 and counts clipped.
                loss += l1 > l2 ? l1 : l2;
                clipped += l1 >= l2 ? 0f : 1f;
                kl += d * d;
                qSum += ratio - 1f;
            }

            Partials[chunk] = new Partial { Loss = loss, Clipped = clipped, Kl = kl, RatioMinusOne = qSum };
        }
    }
}
