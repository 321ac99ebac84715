namespace Rlhf.Tests.Kernels.Gemm;

/// <summary>Naive double-precision oracle for C = (accumulate ? C : 0) + op(A)·op(B), row-major.</summary>
internal static class GemmReference
{
    public static float[] Random(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    /// <summary>Returns the exact-ish product and, per element, Σ|a·b| to scale the fp32 tolerance.</summary>
    public static (double[] Value, double[] Magnitude) Multiply(
        float[] a, float[] b, float[] c, int m, int n, int k, bool transposeA, bool transposeB, bool accumulate)
    {
        var value = new double[m * n];
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = accumulate ? c[i * n + j] : 0.0;
                double abs = Math.Abs(sum);
                for (int p = 0; p < k; p++)
                {
                    double x = transposeA ? a[p * m + i] : a[i * k + p];
                    double y = transposeB ? b[j * k + p] : b[p * n + j];
                    sum += x * y;
                    abs += Math.Abs(x * y);
                }

                value[i * n + j] = sum;
                magnitude[i * n + j] = abs;
            }
        }

        return (value, magnitude);
    }

    /// <summary>Asserts |C − reference| ≤ (k + 2)·2⁻²³·Σ|a·b| per element: the fp32 summation error bound.</summary>
    public static void AssertClose(float[] actual, double[] expected, double[] magnitude, int k, string context)
    {
        double unit = Math.Pow(2, -23) * (k + 2);
        for (int e = 0; e < expected.Length; e++)
        {
            double tolerance = unit * magnitude[e] + 1e-30;
            double error = Math.Abs(actual[e] - expected[e]);
            if (!(error <= tolerance))
            {
                Assert.Fail($"{context}: element {e} is {actual[e]}, expected {expected[e]} (error {error:G3} > {tolerance:G3}).");
            }
        }
    }
}
