using Rlhf.Model;

namespace Rlhf.Cai;

/// <summary>
/// Seeded choice of principles. Each (item, round) gets its own stream derived from the seed, so a prompt's choices
/// do not depend on how many prompts came before it or on batching.
/// </summary>
public static class PrincipleSampler
{
    /// <summary>An index in [0, count), uniform, determined by (seed, item, round).</summary>
    public static int Sample(ulong seed, int item, int round, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var rng = new Xoshiro256(StreamSeed(seed, item, round));
        return (int)(rng.NextDouble() * count);
    }

    /// <summary>
    /// <paramref name="k"/> distinct indices in [0, count) (all of them, shuffled, when k ≥ count), determined by
    /// (seed, item, round): a partial Fisher–Yates shuffle.
    /// </summary>
    public static int[] SampleDistinct(ulong seed, int item, int round, int count, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        k = Math.Min(k, count);
        var all = new int[count];
        for (int i = 0; i < count; i++) all[i] = i;
        var rng = new Xoshiro256(StreamSeed(seed, item, round));
        for (int i = 0; i < k; i++)
        {
            int j = i + (int)(rng.NextDouble() * (count - i));
            (all[i], all[j]) = (all[j], all[i]);
        }

        return all[..k];
    }

    /// <summary>A 64-bit seed for the stream of (seed, item, round): SplitMix64 finalizer over a mix of the three.</summary>
    public static ulong StreamSeed(ulong seed, int item, int round)
    {
        ulong z = seed ^ ((ulong)(uint)item * 0x9E3779B97F4A7C15UL) ^ ((ulong)(uint)round * 0xD1B54A32D192ED03UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
