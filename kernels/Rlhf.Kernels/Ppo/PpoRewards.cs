using System.Numerics;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Ppo;

/// <summary>Per-token PPO rewards (TRL PPOTrainer.compute_rewards): a KL penalty per token plus the score at the end.</summary>
public static unsafe class PpoRewards
{
    /// <summary>
    /// Effectively computes rewards[b, t] = mask[b, t] ≠ 0 ? −klCoef·kl[b, t] : 0, then adds scores[b] at the last
    /// valid token of row b (the largest t with mask[b, t] ≠ 0). A row without valid tokens stays all 0 and its
    /// score is ignored. <paramref name="kl"/> is the per-token estimate (k1: logp − refLogp, or k3).
    /// </summary>
    /// <remarks>Layout [B, T] row-major. NaN in kl at a valid token or in a score of a row with valid tokens throws;
    /// masked tokens are never read into the result. ±Inf propagate.</remarks>
    /// <exception cref="ArgumentException">rewards overlaps an input, lengths (kl, mask, rewards ≠ batch·steps; scores ≠ batch), batch or steps ≤ 0,
    /// klCoef negative or not finite, or a NaN as above (the message names the argument, index and value).</exception>
    public static void Compute(
        ReadOnlySpan<float> kl, ReadOnlySpan<float> scores, ReadOnlySpan<float> mask, Span<float> rewards,
        int batch, int steps, float klCoef)
    {
        int n = PpoArgs.Shape(batch, steps);
        PpoArgs.Length(kl.Length, n, nameof(kl));
        PpoArgs.Length(scores.Length, batch, nameof(scores), "batch");
        PpoArgs.Length(mask.Length, n, nameof(mask));
        PpoArgs.Length(rewards.Length, n, nameof(rewards));
        PpoArgs.Separate(rewards, nameof(rewards), kl, nameof(kl));
        PpoArgs.Separate(rewards, nameof(rewards), mask, nameof(mask));
        PpoArgs.Separate(rewards, nameof(rewards), scores, nameof(scores));
        PpoArgs.Finite(klCoef, nameof(klCoef));
        PpoArgs.NonNegative(klCoef, nameof(klCoef));

        int rowsPerChunk = Math.Max(1, Math.Max((batch + ChunkRunner.MaxChunks - 1) / ChunkRunner.MaxChunks, 16 * 1024 / steps));
        int chunks = (batch + rowsPerChunk - 1) / rowsPerChunk;
        int* badRow = stackalloc int[ChunkRunner.MaxChunks];
        fixed (float* pKl = kl, pScores = scores, pMask = mask, pOut = rewards)
        {
            var body = new Body
            {
                Kl = pKl, Scores = pScores, Mask = pMask, Out = pOut, Batch = batch, Steps = steps,
                RowsPerChunk = rowsPerChunk, NegCoef = -klCoef, BadRow = badRow,
            };
            ChunkRunner.Run(chunks, n, body);
        }

        // The alarm can be false: klCoef = 0 with kl = ±∞ gives −0·∞ = NaN.
        PpoArgs.ThrowOnNaNInFlaggedRows(new ReadOnlySpan<int>(badRow, chunks), rowsPerChunk, steps, mask,
            kl, nameof(kl), rowValues: scores, rowName: nameof(scores));
    }

    private struct Body : IChunkBody
    {
        public float* Kl, Scores, Mask, Out;
        public int Batch, Steps, RowsPerChunk;
        public float NegCoef;
        public int* BadRow;

        public void Run(int chunk)
        {
            int rowEnd = Math.Min(Batch, (chunk + 1) * RowsPerChunk);
            BadRow[chunk] = -1;
            for (int b = chunk * RowsPerChunk; b < rowEnd; b++)
            {
                float* kl = Kl + (long)b * Steps, mask = Mask + (long)b * Steps, o = Out + (long)b * Steps;
                bool nan = false;
                int t = 0, last = -1;
                if (Vector512.IsHardwareAccelerated)
                {
                    var coef = Vector512.Create(NegCoef);
                    var anyNaN = Vector512<float>.Zero;
                    for (; t + 16 <= Steps; t += 16)
                    {
                        var valid = ~Vector512.Equals(Vector512.Load(mask + t), Vector512<float>.Zero);
                        // The last valid token is found on the way: highest set lane of the last block with one.
                        ulong bits = valid.ExtractMostSignificantBits();
                        if (bits != 0) last = t + 63 - BitOperations.LeadingZeroCount(bits);
                        var r = valid & (coef * Vector512.Load(kl + t));
                        anyNaN |= ~Vector512.Equals(r, r);
                        r.Store(o + t);
                    }

                    nan = anyNaN != Vector512<float>.Zero;
                }

                for (; t < Steps; t++)
                {
                    bool valid = mask[t] != 0f;
                    float r = valid ? NegCoef * kl[t] : 0f;
                    if (valid) last = t;
                    nan |= float.IsNaN(r);
                    o[t] = r;
                }

                if (last >= 0)
                {
                    o[last] += Scores[b];
                    nan |= float.IsNaN(Scores[b]);
                }

                if (nan && BadRow[chunk] < 0) BadRow[chunk] = b;
            }
        }
    }
}
