using Rlhf.Model;

namespace Rlhf.Reward;

/// <summary>Seeded shuffles and train / held-out splits (Fisher–Yates over <see cref="Xoshiro256"/>, so the same seed gives the same split everywhere).</summary>
public static class DataSplit
{
    /// <summary>Shuffles <paramref name="items"/> in place with a generator seeded by <paramref name="seed"/>.</summary>
    public static void Shuffle(Span<int> items, ulong seed)
    {
        var rng = new Xoshiro256(seed);
        Shuffle(items, ref rng);
    }

    public static void Shuffle(Span<int> items, ref Xoshiro256 rng)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextUInt64() % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>
    /// Indices 0..count-1 shuffled by <paramref name="seed"/>, the last round(count·fraction) held out (at least one
    /// when fraction &gt; 0 and count ≥ 2; the training part is never empty). Each part is returned in ascending order.
    /// </summary>
    public static (int[] Train, int[] HeldOut) Split(int count, double fraction, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (!(fraction >= 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "must be in [0, 1).");
        var all = new int[count];
        for (int i = 0; i < count; i++) all[i] = i;
        Shuffle(all, seed);
        int held = (int)Math.Round(count * fraction);
        if (fraction > 0 && held == 0 && count >= 2) held = 1;
        held = Math.Min(held, count - 1);
        var train = all[..(count - held)];
        var heldOut = all[(count - held)..];
        Array.Sort(train);
        Array.Sort(heldOut);
        return (train, heldOut);
    }
}
