using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Ppo;

/// <summary>Counts the valid (non-zero) entries of a mask; the normaliser of every masked mean.</summary>
public static unsafe class MaskCount
{
    /// <summary>
    /// Effectively computes Σ [mask[i] ≠ 0] (NaN counts as valid, −0 as masked). The PPO losses take the result as
    /// their <c>validCount</c> so that a minibatch's mask is counted once for all of them, not once per loss.
    /// </summary>
    public static int Count(ReadOnlySpan<float> mask)
    {
        int chunkLength = ChunkRunner.ChunkLength(mask.Length, 64 * 1024);
        int chunks = ChunkRunner.ChunkCount(mask.Length, chunkLength);
        int* partials = stackalloc int[ChunkRunner.MaxChunks];
        fixed (float* m = mask)
        {
            ChunkRunner.Run(chunks, mask.Length / 8, new Body { Mask = m, Length = mask.Length, ChunkLength = chunkLength, Partials = partials });
        }

        long total = 0;
        for (int c = 0; c < chunks; c++) total += partials[c];
        return (int)total;
    }

    private struct Body : IChunkBody
    {
        public float* Mask;
        public int Length;
        public int ChunkLength;
        public int* Partials;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            int count = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var acc = Vector512<int>.Zero;
                for (; i + 16 <= end; i += 16)
                {
                    // Equals gives -1 per lane where the mask is 0; subtracting counts the zeros.
                    acc += Vector512.Equals(Vector512.Load(Mask + i), Vector512<float>.Zero).AsInt32();
                }

                count = (i - chunk * ChunkLength) + Vector512.Sum(acc);
            }

            for (; i < end; i++) count += Mask[i] != 0f ? 1 : 0;
            Partials[chunk] = count;
        }
    }
}
