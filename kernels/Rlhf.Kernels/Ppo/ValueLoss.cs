using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Ppo;

/// <summary>
/// PPO's clipped value loss over [B, T] value predictions (TRL PPOTrainer.loss, value part), with its gradient
/// w.r.t. the predictions in the same pass.
/// </summary>
public static unsafe class ValueLoss
{
    /// <summary>
    /// Effectively computes, per valid token i (mask[i] ≠ 0), vc = clip(v, vOld − ε, vOld + ε), l1 = (v − R)²,
    /// l2 = (vc − R)², and returns Loss = ½·masked_mean(max(l1, l2)), ClipFraction = masked_mean(l2 &gt; l1) and
    /// masked_mean(l1). Writes grad[i] = gradientScale·∂Loss/∂v[i] = gradientScale·(l1 ≥ l2 ? v − R : 0)/N and 0 at
    /// masked tokens. Pass <paramref name="clipRange"/> = +∞ to turn clipping off: then vc = v, so Loss =
    /// ½·masked_mean((v − R)²), ClipFraction = 0 and grad[i] = gradientScale·(v − R)/N (TRL's unclipped form), with the
    /// same bits whatever the old values hold, ±∞ included. With no valid token everything is 0.
    /// </summary>
    /// <remarks>Layout [B, T] row-major. A NaN at a valid token throws, in <paramref name="oldValues"/> too when clipping
    /// is off (they are not used then, but a NaN there is a broken rollout all the same); masked tokens are never read
    /// into the result. Other ±∞ inputs follow IEEE arithmetic and are not rejected: with a finite clipRange an infinite
    /// old value clips v to ±∞ (Loss +∞, the token counted clipped, gradient 0), and ±∞ values or returns give ±∞ or NaN
    /// statistics. Deterministic for any <see cref="KernelParallelism.MaxThreads"/>.</remarks>
    /// <param name="validCount"><see cref="MaskCount.Count"/> of <paramref name="mask"/> when the caller already has it
    /// (several losses over one minibatch); −1, the default, counts here. It is trusted: a wrong count scales the loss and
    /// the gradient wrongly.</param>
    /// <exception cref="ArgumentException">The gradient overlaps an input, lengths ≠ batch·steps, batch or steps ≤ 0, clipRange &lt; 0 or NaN, validCount outside [−1, batch·steps],
    /// or a NaN input at a valid token (the message names the argument, index and value).</exception>
    public static ValueLossStats Compute(
        ReadOnlySpan<float> values, ReadOnlySpan<float> oldValues, ReadOnlySpan<float> returns,
        ReadOnlySpan<float> mask, Span<float> gradValues, int batch, int steps, float clipRange,
        float gradientScale = 1f, int validCount = -1)
    {
        int n = PpoArgs.Shape(batch, steps);
        PpoArgs.Length(values.Length, n, nameof(values));
        PpoArgs.Length(oldValues.Length, n, nameof(oldValues));
        PpoArgs.Length(returns.Length, n, nameof(returns));
        PpoArgs.Length(mask.Length, n, nameof(mask));
        PpoArgs.Length(gradValues.Length, n, nameof(gradValues));
        PpoArgs.Separate(gradValues, nameof(gradValues), values, nameof(values));
        PpoArgs.Separate(gradValues, nameof(gradValues), oldValues, nameof(oldValues));
        PpoArgs.Separate(gradValues, nameof(gradValues), returns, nameof(returns));
        PpoArgs.Separate(gradValues, nameof(gradValues), mask, nameof(mask));
        PpoArgs.NonNegative(clipRange, nameof(clipRange));
        PpoArgs.Finite(gradientScale, nameof(gradientScale));

        int valid = PpoArgs.ValidCount(validCount, mask, nameof(validCount));
        int chunkLength = ChunkRunner.ChunkLength(n, 16 * 1024);
        int chunks = ChunkRunner.ChunkCount(n, chunkLength);
        Partial* partials = stackalloc Partial[ChunkRunner.MaxChunks];
        fixed (float* pV = values, pOld = oldValues, pRet = returns, pMask = mask, pGrad = gradValues)
        {
            var body = new Body
            {
                V = pV, OldV = pOld, Ret = pRet, Mask = pMask, Grad = pGrad,
                Length = n, ChunkLength = chunkLength, Partials = partials, ClipRange = clipRange,
                Unclipped = float.IsPositiveInfinity(clipRange),
                GradPerToken = valid == 0 ? 0f : gradientScale / valid,
            };
            ChunkRunner.Run(chunks, n, body);
        }

        double loss = 0, clipped = 0, squared = 0;
        bool oldNaN = false;
        for (int c = 0; c < chunks; c++)
        {
            loss += partials[c].Loss;
            clipped += partials[c].Clipped;
            squared += partials[c].Squared;
            oldNaN |= partials[c].OldNaN;
        }

        if (double.IsNaN(loss) || double.IsNaN(squared) || oldNaN)
            PpoArgs.ThrowOnNaN(steps, mask, values, nameof(values), oldValues, nameof(oldValues), returns, nameof(returns));
        if (valid == 0) return new ValueLossStats(0f, 0f, 0f, 0);
        return new ValueLossStats((float)(0.5 * loss / valid), (float)(clipped / valid), (float)(squared / valid), valid);
    }

    private struct Partial
    {
        public double Loss, Clipped, Squared;

        /// <summary>A NaN old value at a valid token with clipping off (where old values reach no sum).</summary>
        public bool OldNaN;
    }

    private struct Body : IChunkBody
    {
        public float* V, OldV, Ret, Mask, Grad;
        public int Length, ChunkLength;
        public float ClipRange, GradPerToken;
        public bool Unclipped;
        public Partial* Partials;

        public void Run(int chunk)
        {
            if (Unclipped)
            {
                RunUnclipped(chunk);
                return;
            }

            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            float loss = 0f, clipped = 0f, squared = 0f;
            // Locals, not fields: stores through Grad could alias `this`, so field reads would be redone per vector.
            float* pV = V, pOld = OldV, pRet = Ret, pMask = Mask, pGrad = Grad;
            if (Vector512.IsHardwareAccelerated)
            {
                var eps = Vector512.Create(ClipRange);
                var gs = Vector512.Create(GradPerToken);
                Vector512<float> accLoss = default, accSq = default;
                var accKept = Vector512<int>.Zero;
                int begin = i;
                for (; i + 16 <= end; i += 16)
                {
                    var valid = ~Vector512.Equals(Vector512.Load(pMask + i), Vector512<float>.Zero);
                    // Zero-masked loads: masked lanes become v = vOld = R = 0, so both squared errors and the gradient
                    // are exactly 0 there, NaN padding included.
                    var v = PpoMath.LoadValid(pV + i, valid);
                    var old = PpoMath.LoadValid(pOld + i, valid);
                    var r = PpoMath.LoadValid(pRet + i, valid);
                    // Native min/max (one instruction each) return their second operand when either is NaN: a NaN old
                    // value survives the clip into e2, and a NaN v or R reaches e1.
                    var vc = Vector512.MinNative(Vector512.MaxNative(v, old - eps), old + eps);
                    var e1 = v - r;
                    var e2 = vc - r;
                    var l1 = e1 * e1;
                    var l2 = e2 * e2;
                    var keep = Vector512.GreaterThanOrEqual(l1, l2);
                    (keep & (e1 * gs)).Store(pGrad + i);
                    // max(l1, l2), NaN-propagating through l2 (second); a NaN l1 reaches Σl1.
                    accLoss += Vector512.MaxNative(l1, l2);
                    // Masked lanes (0 ≥ 0) count as kept; the valid lanes not kept are the clipped ones.
                    accKept -= keep.AsInt32();
                    accSq += l1;
                }

                loss = Vector512.Sum(accLoss);
                clipped = i - begin - Vector512.Sum(accKept);
                squared = Vector512.Sum(accSq);
            }

            for (; i < end; i++)
            {
                if (pMask[i] == 0f)
                {
                    pGrad[i] = 0f;
                    continue;
                }

                float v = pV[i], old = pOld[i], r = pRet[i];
                float vc = MathF.Min(MathF.Max(v, old - ClipRange), old + ClipRange);
                float e1 = v - r, e2 = vc - r;
                float l1 = e1 * e1, l2 = e2 * e2;
                pGrad[i] = l1 >= l2 ? e1 * GradPerToken : 0f;
                loss += MathF.Max(l1, l2);
                clipped += l2 > l1 ? 1f : 0f;
                squared += l1;
            }

            Partials[chunk] = new Partial { Loss = loss, Clipped = clipped, Squared = squared };
        }

        /// <summary>
        /// clipRange = +∞: vc = v, so l2 = l1, every token is kept and max(l1, l2) = l1. The clipped loop computes the
        /// same bits for finite old values, but vOld ± ∞ is NaN for an infinite one; here the old values are only tested
        /// for NaN (which the contract rejects), and Σmax(l1, l2) is Σl1.
        /// </summary>
        private void RunUnclipped(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            float squared = 0f;
            bool oldNaN = false;
            float* pV = V, pOld = OldV, pRet = Ret, pMask = Mask, pGrad = Grad;
            if (Vector512.IsHardwareAccelerated)
            {
                var gs = Vector512.Create(GradPerToken);
                Vector512<float> accSq = default, anyOldNaN = default;
                for (; i + 16 <= end; i += 16)
                {
                    var valid = ~Vector512.Equals(Vector512.Load(pMask + i), Vector512<float>.Zero);
                    var e1 = PpoMath.LoadValid(pV + i, valid) - PpoMath.LoadValid(pRet + i, valid);
                    var old = PpoMath.LoadValid(pOld + i, valid);
                    (e1 * gs).Store(pGrad + i);
                    accSq += e1 * e1;
                    anyOldNaN |= ~Vector512.Equals(old, old);
                }

                squared = Vector512.Sum(accSq);
                oldNaN = anyOldNaN != Vector512<float>.Zero;
            }

            for (; i < end; i++)
            {
                if (pMask[i] == 0f)
                {
                    pGrad[i] = 0f;
                    continue;
                }

                float e1 = pV[i] - pRet[i];
                pGrad[i] = e1 * GradPerToken;
                squared += e1 * e1;
                oldNaN |= float.IsNaN(pOld[i]);
            }

            Partials[chunk] = new Partial { Loss = squared, Clipped = 0, Squared = squared, OldNaN = oldNaN };
        }
    }
}
