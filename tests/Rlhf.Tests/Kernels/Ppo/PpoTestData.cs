namespace Rlhf.Tests.Kernels.Ppo;

/// <summary>Seeded inputs and element-wise comparisons for the PPO / optimizer kernel tests.</summary>
internal static class PpoTestData
{
    public static float[] Uniform(Random rng, int n, float lo, float hi)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return x;
    }

    public static float[] Normal(Random rng, int n, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = 1.0 - rng.NextDouble(), v = rng.NextDouble();
            x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v));
        }

        return x;
    }

    /// <summary>
    /// A [B, T] mask with the shapes PPO batches have: full rows, left+right padding, an all-masked row (row 2 when
    /// B &gt; 2), interior gaps and random lengths.
    /// </summary>
    public static float[] Mask(Random rng, int batch, int steps)
    {
        var m = new float[batch * steps];
        for (int b = 0; b < batch; b++)
        {
            var row = m.AsSpan(b * steps, steps);
            switch (b % 5)
            {
                case 0:
                    row.Fill(1f);
                    break;
                case 1:
                    int start = rng.Next(0, steps / 2 + 1), end = rng.Next(start, steps + 1);
                    row[start..end].Fill(1f);
                    break;
                case 2:
                    break;
                case 3:
                    for (int t = 0; t < steps; t++) row[t] = rng.NextDouble() < 0.7 ? 1f : 0f;
                    break;
                default:
                    row[..rng.Next(1, steps + 1)].Fill(1f);
                    break;
            }
        }

        if (batch == 1 && !m.Contains(1f)) m[0] = 1f;
        return m;
    }

    /// <summary>Puts NaN into every masked position: kernels must never let padding reach a result.</summary>
    public static float[] PoisonMasked(float[] x, float[] mask)
    {
        var y = (float[])x.Clone();
        for (int i = 0; i < y.Length; i++)
        {
            if (mask[i] == 0f) y[i] = float.NaN;
        }

        return y;
    }

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = abs + rel * Math.Abs(expected[i]);
            if (!(Math.Abs(actual[i] - expected[i]) <= tol))
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tol:G3})");
        }
    }

    public static void AssertClose(double expected, double actual, double rel, double abs, string what)
    {
        double tol = abs + rel * Math.Abs(expected);
        Assert.That(Math.Abs(actual - expected), Is.LessThanOrEqualTo(tol), $"{what}: expected {expected:R}, got {actual:R}");
    }

    public static double[] ToDouble(ReadOnlySpan<float> x)
    {
        var d = new double[x.Length];
        for (int i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }
}
