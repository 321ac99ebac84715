namespace Rlhf.Kernels.Ppo;

/// <summary>Argument checks shared by the PPO and optimizer kernels; messages name the argument, index and value.</summary>
internal static class PpoArgs
{
    /// <summary>Checks batch, steps &gt; 0 and returns batch·steps.</summary>
    public static int Shape(int batch, int steps)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be > 0 (got {batch}).");
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, $"steps must be > 0 (got {steps}).");
        long n = (long)batch * steps;
        if (n > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch*steps = {n} exceeds the largest span.");
        return (int)n;
    }

    public static void Length(int actual, int expected, string name, string what = "batch*steps")
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has {actual} elements but {what} = {expected}.", name);
    }

    /// <summary>
    /// Rejects an output that shares memory with an input: these kernels find a NaN input after the fact by reading
    /// the inputs again, which an output written over them would have erased (a NaN log-prob leaves a 0 gradient).
    /// </summary>
    public static void Separate(ReadOnlySpan<float> output, string outputName, ReadOnlySpan<float> input, string inputName)
    {
        if (output.Overlaps(input))
            throw new ArgumentException($"{outputName} overlaps {inputName}: write the results to a separate buffer.", outputName);
    }

    public static void NonNegative(float value, string name)
    {
        if (!(value >= 0f)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be >= 0 (got {value}).");
    }

    public static void Finite(float value, string name)
    {
        if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite (got {value}).");
    }

    /// <summary>The mask's valid-token count: <paramref name="count"/> when the caller has it (checked to lie in
    /// [0, mask length]), counted here when it is −1.</summary>
    public static int ValidCount(int count, ReadOnlySpan<float> mask, string name)
    {
        if (count == -1) return MaskCount.Count(mask);
        if (count < 0 || count > mask.Length)
            throw new ArgumentOutOfRangeException(name, count, $"{name} must be -1 (count the mask) or in [0, {mask.Length}] (got {count}).");
        return count;
    }

    public static void UnitInterval(float value, string name)
    {
        if (!(value >= 0f && value <= 1f)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1] (got {value}).");
    }

    /// <summary>The exception for a bad element of a [B, T] input.</summary>
    public static ArgumentException BadElement(string name, int index, float value, int steps, string why = "is not a number") =>
        new($"{name}[{index}] (row {index / steps}, step {index % steps}) = {value} {why}.", name);

    /// <summary>First index i with mask[i] != 0 and a NaN in <paramref name="x"/>, or -1.</summary>
    public static int FirstNaN(ReadOnlySpan<float> x, ReadOnlySpan<float> mask)
    {
        for (int i = 0; i < x.Length; i++)
        {
            if (mask[i] != 0f && float.IsNaN(x[i])) return i;
        }

        return -1;
    }

    /// <summary>
    /// The exact check behind a per-chunk NaN alarm over whole rows (GAE, KL-penalised rewards):
    /// <paramref name="firstFlaggedRow"/>[c] is chunk c's first row whose alarm went off, or −1. The alarm is cheap and
    /// can be false (±∞ inputs can make a NaN without a NaN input), so a flagged chunk is read from that row to its
    /// end: a real NaN further on must not hide behind a false alarm. Throws for the first NaN, row by row: the row's
    /// <paramref name="rowValues"/> entry when given (only if the row has a valid token), then per valid token
    /// <paramref name="a"/>, then <paramref name="b"/> when given.
    /// </summary>
    public static void ThrowOnNaNInFlaggedRows(ReadOnlySpan<int> firstFlaggedRow, int rowsPerChunk, int steps, ReadOnlySpan<float> mask,
        ReadOnlySpan<float> a, string aName, ReadOnlySpan<float> b = default, string bName = "",
        ReadOnlySpan<float> rowValues = default, string rowName = "")
    {
        int batch = mask.Length / steps;
        for (int c = 0; c < firstFlaggedRow.Length; c++)
        {
            if (firstFlaggedRow[c] < 0) continue;
            for (int row = firstFlaggedRow[c]; row < Math.Min(batch, (c + 1) * rowsPerChunk); row++)
            {
                int t0 = row * steps;
                if (!rowValues.IsEmpty && float.IsNaN(rowValues[row]) && mask.Slice(t0, steps).ContainsAnyExcept(0f))
                    throw new ArgumentException($"{rowName}[{row}] = NaN is not a number.", rowName);
                for (int i = t0; i < t0 + steps; i++)
                {
                    if (mask[i] == 0f) continue;
                    if (float.IsNaN(a[i])) throw BadElement(aName, i, a[i], steps);
                    if (!b.IsEmpty && float.IsNaN(b[i])) throw BadElement(bName, i, b[i], steps);
                }
            }
        }
    }

    /// <summary>Throws for the first NaN under the mask among up to four [B, T] inputs (used after a reduction came out NaN).</summary>
    public static void ThrowOnNaN(int steps, ReadOnlySpan<float> mask,
        ReadOnlySpan<float> a, string aName, ReadOnlySpan<float> b, string bName,
        ReadOnlySpan<float> c = default, string cName = "", ReadOnlySpan<float> d = default, string dName = "")
    {
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0f) continue;
            if (float.IsNaN(a[i])) throw BadElement(aName, i, a[i], steps);
            if (float.IsNaN(b[i])) throw BadElement(bName, i, b[i], steps);
            if (!c.IsEmpty && float.IsNaN(c[i])) throw BadElement(cName, i, c[i], steps);
            if (!d.IsEmpty && float.IsNaN(d[i])) throw BadElement(dName, i, d[i], steps);
        }
    }
}
