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
    /// masked tokens. Pass <paramref name="clipRange"/> = +∞ to turn clipping off (then Loss = ½·masked_mean((v−R)²)).
    /// With no valid token everything is 0.
    /// </summary>
    /// <remarks>Layout [B, T] row-major. A NaN at a valid token throws; masked tokens are never read into the result.
    /// Deterministic for any <see cref="KernelParallelism.MaxThreads"/>.</remarks>
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
                GradPerToken = valid == 0 ? 0f : gradientScale / valid,
            };
            ChunkRunner.Run(chunks, n, body);
        }

        double loss = 0, clipped = 0, squared = 0;
        for (int c = 0; c < chunks; c++)
        {
            loss += partials[c].Loss;
            clipped += partials[c].Clipped;
            squared += partials[c].Squared;
        }

        if (double.IsNaN(loss) || double.IsNaN(squared))
            PpoArgs.ThrowOnNaN(steps, mask, values, nameof(values), oldValues, nameof(oldValues), returns, nameof(returns));
        if (valid == 0) return new ValueLossStats(0f, 0f, 0f, 0);
        return new ValueLossStats((float)(0.5 * loss / valid), (float)(clipped / valid), (float)(squared / valid), valid);
    }

    private struct Partial
    {
        public double Loss, Clipped, Squared;
    }

    private struct Body : IChunkBody
    {
        public float* V, OldV, Ret, Mask, Grad;
        public int Length, ChunkLength;
        public float ClipRange, GradPerToken;
        public Partial* Partials;

        public void Run(int chunk)
        {
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
    }
}
