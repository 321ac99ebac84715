using System.Runtime.InteropServices;
using Rlhf.Kernels.Linear;

namespace Rlhf.Kernels;

/// <summary>
/// Single-precision matrix products over row-major spans.
/// </summary>
/// <remarks>
/// CPU only. On a GPU, GEMMs go to cuBLAS through P/Invoke (see design.md), so there is deliberately no ILGPU GEMM
/// kernel: a hand-written ILGPU tiling would reach a fraction of cuBLAS and is not needed for correctness tests,
/// which compare the GPU path against this one.
/// </remarks>
public static class Gemm
{
    [ThreadStatic]
    private static bool onThisThread;

    /// <summary>True while <see cref="MultiplyOnThisThread"/> runs on this thread: the kernels then do not fork.</summary>
    internal static bool OnThisThread => onThisThread;

    /// <summary>
    /// <see cref="Multiply"/> run entirely on the calling thread, for callers that already parallelize over
    /// independent products (e.g. attention heads). Same bits as <see cref="Multiply"/>, which never depend on the
    /// thread count.
    /// </summary>
    public static void MultiplyOnThisThread(
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c,
        int m, int n, int k,
        bool transposeA = false, bool transposeB = false, bool accumulate = false)
    {
        bool outer = onThisThread;
        onThisThread = true;
        try
        {
            Multiply(a, b, c, m, n, k, transposeA, transposeB, accumulate);
        }
        finally
        {
            onThisThread = outer;
        }
    }

    /// <summary>
    /// Effectively computes C[i, j] = (accumulate ? C[i, j] : 0) + Σ_p op(A)[i, p]·op(B)[p, j] for i &lt; m, j &lt; n,
    /// where op(A) is [m, k] and op(B) is [k, n]. A is stored [m, k] (or [k, m] when <paramref name="transposeA"/>);
    /// B is stored [k, n] (or [n, k] when <paramref name="transposeB"/>); C is [m, n]; all row-major and dense.
    /// </summary>
    /// <remarks>
    /// Products are fused multiply-adds in fp32; the sum over p runs in a fixed order that depends on the shape only,
    /// so the same inputs give the same bits for any <see cref="KernelParallelism.MaxThreads"/>. NaN and ±Inf
    /// propagate as in IEEE arithmetic (a NaN in A row i makes C row i NaN; Inf·0 gives NaN). With k = 0, C is
    /// zeroed (or left unchanged when <paramref name="accumulate"/>). Without <paramref name="accumulate"/>, C is
    /// only written, so stale NaNs in it do not leak. <paramref name="c"/> must not overlap <paramref name="a"/> or
    /// <paramref name="b"/>. m ≤ 8 (and n = 1) take a GEMV-like path that streams B once without packing.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">m, n or k is negative.</exception>
    /// <exception cref="ArgumentException">A span is shorter than its matrix.</exception>
    public static unsafe void Multiply(
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c,
        int m, int n, int k,
        bool transposeA = false, bool transposeB = false, bool accumulate = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        RequireLength(a.Length, (long)m * k, "m*k", nameof(a));
        RequireLength(b.Length, (long)k * n, "k*n", nameof(b));
        RequireLength(c.Length, (long)m * n, "m*n", nameof(c));
        if (m == 0 || n == 0)
        {
            return;
        }

        if (k == 0)
        {
            if (!accumulate) c[..(m * n)].Clear();
            return;
        }

        fixed (float* pa = &MemoryMarshal.GetReference(a))
        fixed (float* pb = &MemoryMarshal.GetReference(b))
        fixed (float* pc = &MemoryMarshal.GetReference(c))
        {
            if (m <= GemmSmallM.MaxRows && transposeA)
            {
                // op(A) rows must be contiguous for the dot/axpy loops; m·k ≤ 8k floats, copied once.
                GemmWorkspace workspace = GemmBuffers.Rent();
                try
                {
                    float* aRows = workspace.A(m * k);
                    for (int p = 0; p < k; p++)
                    {
                        for (int i = 0; i < m; i++) aRows[(nint)i * k + p] = pa[(nint)p * m + i];
                    }

                    GemmSmallM.Multiply(aRows, pb, pc, m, n, k, transposeB, accumulate);
                }
                finally
                {
                    GemmBuffers.Return(workspace);
                }
            }
            else if (m <= GemmSmallM.MaxRows)
            {
                GemmSmallM.Multiply(pa, pb, pc, m, n, k, transposeB, accumulate);
            }
            else if (n == 1)
            {
                // C[m, 1] has the memory of C'[1, m] = bᵀ·op(A)ᵀ: a one-row product on the GEMV path, where
                // op(A)ᵀ is A read as [m, k] stored transposed (or as [k, m] plain when transposeA).
                GemmSmallM.Multiply(pb, pa, pc, 1, m, k, transposeB: !transposeA, accumulate);
            }
            else
            {
                GemmBlocked.Multiply(pa, pb, pc, m, n, k, transposeA, transposeB, accumulate);
            }
        }
    }

    private static void RequireLength(int length, long needed, string what, string name)
    {
        if (length < needed)
        {
            throw new ArgumentException($"{name} has {length} elements but needs {what} = {needed}.", name);
        }
    }
}
