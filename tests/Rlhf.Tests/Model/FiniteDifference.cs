namespace Rlhf.Tests.Model;

/// <summary>Central finite differences of a scalar loss computed in fp32 layers (sums in double).</summary>
internal static class FiniteDifference
{
    /// <summary>Checks analytic[i] against (L(x+h e_i) − L(x−h e_i)) / 2h for the listed indices (all when null).</summary>
    public static void Check(float[] x, ReadOnlySpan<float> analytic, Func<double> loss, string what, double h = 1e-2, double tol = 2e-3, int[]? indices = null)
    {
        int count = indices?.Length ?? x.Length;
        double scale = 0;
        for (int i = 0; i < analytic.Length; i++) scale = Math.Max(scale, Math.Abs(analytic[i]));
        Assert.That(scale, Is.GreaterThan(0), what + ": analytic gradient is all zero, the check would be vacuous");
        for (int c = 0; c < count; c++)
        {
            int i = indices?[c] ?? c;
            float orig = x[i];
            x[i] = (float)(orig + h);
            double plus = loss();
            x[i] = (float)(orig - h);
            double minus = loss();
            x[i] = orig;
            double fd = (plus - minus) / (2 * h);
            double err = Math.Abs(fd - analytic[i]);
            double allowed = tol * (Math.Abs(fd) + 0.05 * scale) + 1e-5;
            if (!(err <= allowed)) Assert.Fail($"{what}[{i}]: analytic {analytic[i]}, finite difference {fd} (err {err:g3} > {allowed:g3})");
        }
    }

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
