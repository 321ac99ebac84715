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
    /// <remarks>Layout [B, T] row-major. A NaN at a valid token throws; ±Inf propagate as in IEEE arithmetic.
    /// Deterministic: fixed chunks reduced in order, for any <see cref="KernelParallelism.MaxThreads"/>.</remarks>
    /// <exception cref="ArgumentException">Lengths ≠ batch·steps, batch or steps ≤ 0, clipRange &lt; 0 or NaN,
    /// or a NaN input at a valid token (the message names the argument, index and value).</exception>
    public static PolicyLossStats Compute(
        ReadOnlySpan<float> newLogProbs, ReadOnlySpan<float> oldLogProbs, ReadOnlySpan<float> advantages,
        ReadOnlySpan<float> mask, Span<float> gradNewLogProbs, int batch, int steps, float clipRange,
        float gradientScale = 1f)
    {
        int n = PpoArgs.Shape(batch, steps);
        PpoArgs.Length(newLogProbs.Length, n, nameof(newLogProbs));
        PpoArgs.Length(oldLogProbs.Length, n, nameof(oldLogProbs));
        PpoArgs.Length(advantages.Length, n, nameof(advantages));
        PpoArgs.Length(mask.Length, n, nameof(mask));
        PpoArgs.Length(gradNewLogProbs.Length, n, nameof(gradNewLogProbs));
        PpoArgs.NonNegative(clipRange, nameof(clipRange));
        PpoArgs.Finite(gradientScale, nameof(gradientScale));

        int valid = MaskCount.Count(mask);
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

        double loss = 0, clipped = 0, kl = 0, ratio = 0;
        for (int c = 0; c < chunks; c++)
        {
            loss += partials[c].Loss;
            clipped += partials[c].Clipped;
            kl += partials[c].Kl;
            ratio += partials[c].Ratio;
        }

        if (double.IsNaN(loss) || double.IsNaN(kl) || double.IsNaN(ratio))
            PpoArgs.ThrowOnNaN(steps, mask, newLogProbs, nameof(newLogProbs), oldLogProbs, nameof(oldLogProbs), advantages, nameof(advantages));
        if (valid == 0) return new PolicyLossStats(0f, 0f, 0f, 0f, 0);
        return new PolicyLossStats((float)(loss / valid), (float)(clipped / valid), (float)(0.5 * kl / valid), (float)(ratio / valid), valid);
    }

    private struct Partial
    {
        public double Loss, Clipped, Kl, Ratio;
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
            float loss = 0f, clipped = 0f, kl = 0f, ratioSum = 0f;
            if (Vector512.IsHardwareAccelerated)
            {
                var lo = Vector512.Create(Low);
                var hi = Vector512.Create(High);
                var gs = Vector512.Create(GradPerToken);
                var one = Vector512<float>.One;
                Vector512<float> accLoss = default, accClip = default, accKl = default, accRatio = default;
                for (; i + 16 <= end; i += 16)
                {
                    var valid = ~Vector512.Equals(Vector512.Load(Mask + i), Vector512<float>.Zero);
                    // Masked lanes become d = 0, A = 0: loss, KL and gradient are exactly 0 there, NaN padding included.
                    var d = valid & (Vector512.Load(NewLogp + i) - Vector512.Load(OldLogp + i));
                    var a = valid & Vector512.Load(Adv + i);
                    var ratio = PpoMath.Exp(d);
                    var l1 = -a * ratio;
                    var l2 = -a * Vector512.Min(Vector512.Max(ratio, lo), hi);
                    (Vector512.GreaterThanOrEqual(l1, l2) & (l1 * gs)).Store(Grad + i);
                    accLoss += Vector512.Max(l1, l2);
                    accClip += Vector512.GreaterThan(l2, l1) & one;
                    accKl += d * d;
                    accRatio += valid & ratio;
                }

                loss = Vector512.Sum(accLoss);
                clipped = Vector512.Sum(accClip);
                kl = Vector512.Sum(accKl);
                ratioSum = Vector512.Sum(accRatio);
            }

            for (; i < end; i++)
            {
                if (Mask[i] == 0f)
                {
                    Grad[i] = 0f;
                    continue;
                }

                float d = NewLogp[i] - OldLogp[i];
                float a = Adv[i];
                float ratio = MathF.Exp(d);
                float l1 = -a * ratio;
                float l2 = -a * Math.Clamp(ratio, Low, High);
                Grad[i] = l1 >= l2 ? l1 * GradPerToken : 0f;
                loss += MathF.Max(l1, l2);
                clipped += l2 > l1 ? 1f : 0f;
                kl += d * d;
                ratioSum += ratio;
            }

            Partials[chunk] = new Partial { Loss = loss, Clipped = clipped, Kl = kl, Ratio = ratioSum };
        }
    }
}
