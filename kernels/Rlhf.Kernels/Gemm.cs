namespace Rlhf.Kernels;

/// <summary>
/// Single-precision matrix products over row-major spans.
/// </summary>
public static class Gemm
{
    /// <summary>
    /// Effectively computes C[m,n] = (accumulate ? C : 0) + op(A)·op(B) where op(A) is [m,k] and op(B) is [k,n].
    /// A is stored [m,k] (or [k,m] when <paramref name="transposeA"/>); B is stored [k,n] (or [n,k] when
    /// <paramref name="transposeB"/>). NaN and ±Inf propagate as in IEEE arithmetic.
    /// </summary>
    public static void Multiply(
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c,
        int m, int n, int k,
        bool transposeA = false, bool transposeB = false, bool accumulate = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (a.Length < (long)m * k) throw new ArgumentException($"a has {a.Length} elements, needs m*k = {(long)m * k}.", nameof(a));
        if (b.Length < (long)k * n) throw new ArgumentException($"b has {b.Length} elements, needs k*n = {(long)k * n}.", nameof(b));
        if (c.Length < (long)m * n) throw new ArgumentException($"c has {c.Length} elements, needs m*n = {(long)m * n}.", nameof(c));

        // Straightforward i-p-j loop; a packed Vector512 micro-kernel replaces it (kernels issue, item 9).
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * n, n);
            if (!accumulate) row.Clear();
            for (int p = 0; p < k; p++)
            {
                float aip = transposeA ? a[p * m + i] : a[i * k + p];
                if (aip == 0f) continue;
                if (!transposeB)
                {
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(b.Slice(p * n, n), aip, row, row);
                }
                else
                {
                    for (int j = 0; j < n; j++) row[j] += aip * b[j * k + p];
                }
            }
        }
    }
}
