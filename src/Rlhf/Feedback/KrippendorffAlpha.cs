namespace Rlhf.Feedback;

/// <summary>Krippendorff's alpha for ordinal data (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").</summary>
public static class KrippendorffAlpha
{
    /// <summary>
    /// Effectively computes α = 1 − (n − 1)·Σ o_ck δ²_ck / Σ n_c n_k δ²_ck from the coincidence matrix o of the
    /// pairable values, with the ordinal metric δ²_ck = (Σ_{g=c..k} n_g − (n_c + n_k)/2)². Each unit is the list
    /// of values the coders gave one item; units with fewer than two values are not pairable and are ignored.
    /// Values are compared by order only. Returns NaN when there is no variation at all (expected disagreement 0).
    /// </summary>
    public static double Ordinal(IEnumerable<IReadOnlyList<double>> units)
    {
        var pairable = units.Where(u => u.Count >= 2).ToList();
        var values = pairable.SelectMany(u => u).Distinct().Order().ToArray();
        int v = values.Length;
        if (v == 0) return double.NaN;
        var index = new Dictionary<double, int>();
        for (int i = 0; i < v; i++) index[values[i]] = i;

        var o = new double[v, v];
        foreach (var unit in pairable)
        {
            double weight = 1.0 / (unit.Count - 1);
            for (int a = 0; a < unit.Count; a++)
            {
                for (int b = 0; b < unit.Count; b++)
                {
                    if (a != b) o[index[unit[a]], index[unit[b]]] += weight;
                }
            }
        }

        var marginal = new double[v];
        double n = 0;
        for (int c = 0; c < v; c++)
        {
            for (int k = 0; k < v; k++) marginal[c] += o[c, k];
            n += marginal[c];
        }

        double observed = 0, expected = 0;
        for (int c = 0; c < v; c++)
        {
            for (int k = 0; k < v; k++)
            {
                double delta = OrdinalDistance(marginal, c, k);
                observed += o[c, k] * delta;
                expected += marginal[c] * marginal[k] * delta;
            }
        }

        return expected == 0 ? double.NaN : 1 - (n - 1) * observed / expected;
    }

    private static double OrdinalDistance(double[] marginal, int c, int k)
    {
        if (c == k) return 0;
        int low = Math.Min(c, k), high = Math.Max(c, k);
        double sum = 0;
        for (int g = low; g <= high; g++) sum += marginal[g];
        double d = sum - (marginal[c] + marginal[k]) / 2;
        return d * d;
    }
}
