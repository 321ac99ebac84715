namespace Rlhf.DeviceBench;

internal static class Errors
{
    /// <summary>max |a−b| / max(|b|, floor) over the elements: relative error with an absolute floor near zero.</summary>
    public static double MaxRelative(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double floor = 1e-6)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"length {actual.Length} vs {expected.Length}");
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            if (double.IsNaN(a) != double.IsNaN(e)) return double.PositiveInfinity;
            if (double.IsNaN(a) || a == e) continue;
            worst = Math.Max(worst, Math.Abs(a - e) / Math.Max(Math.Abs(e), floor));
        }

        return worst;
    }

    /// <summary>max |a − e| / (|e| + 0.1·max|e|): relative error with a floor at a tenth of the tensor's scale.</summary>
    public static double MaxScaled(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double scale = 0;
        foreach (float e in expected) scale = Math.Max(scale, Math.Abs(e));
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - (double)expected[i]);
            if (double.IsNaN(err)) return double.PositiveInfinity;
            worst = Math.Max(worst, err / (Math.Abs(expected[i]) + 0.1 * scale + 1e-12));
        }

        return worst;
    }
}
