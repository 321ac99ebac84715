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
}
