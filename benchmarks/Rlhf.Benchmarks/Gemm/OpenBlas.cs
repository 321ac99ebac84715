using System.Runtime.InteropServices;

namespace Rlhf.Benchmarks.Gemm;

/// <summary>
/// OpenBLAS (Debian's libopenblas0, pthread build) as the GEMM speed peer. Benchmarks only: the product never
/// depends on OpenBLAS.
/// </summary>
/// <remarks>
/// OpenBLAS picks its kernels when the library loads, from OPENBLAS_CORETYPE. The environment here sets Haswell
/// (AVX2, ~105 GFLOP/s on one thread); SkylakeX (AVX-512, ~190) is the fair peer for an AVX-512 kernel. The variable
/// must be in the process environment before start: .NET's Environment.SetEnvironmentVariable does not reach the
/// native environ that OpenBLAS reads, so <see cref="RequireSkylakeX"/> fails loudly instead of measuring the wrong
/// kernels.
/// </remarks>
internal static partial class OpenBlas
{
    private const string Library = "libopenblas.so.0";

    public const int RowMajor = 101;
    public const int NoTrans = 111;
    public const int Trans = 112;

    [LibraryImport(Library, EntryPoint = "cblas_sgemm")]
    public static unsafe partial void Sgemm(
        int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library, EntryPoint = "openblas_set_num_threads")]
    public static partial void SetNumThreads(int threads);

    [LibraryImport(Library, EntryPoint = "openblas_get_corename")]
    private static partial nint GetCoreName();

    public static string CoreName => Marshal.PtrToStringAnsi(GetCoreName()) ?? "";

    /// <summary>Throws unless OpenBLAS loaded its AVX-512 (SkylakeX-class) kernels.</summary>
    public static void RequireSkylakeX()
    {
        string core = CoreName;
        if (!core.Contains("skylakex", StringComparison.OrdinalIgnoreCase)
            && !core.Contains("cooperlake", StringComparison.OrdinalIgnoreCase)
            && !core.Contains("sapphirerapids", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException(
                $"OpenBLAS runs its '{core}' kernels. Start the process with OPENBLAS_CORETYPE=SkylakeX, e.g. " +
                "OPENBLAS_CORETYPE=SkylakeX dotnet run -c Release --project benchmarks/Rlhf.Benchmarks -- --filter '*Gemm*'.");
        }
    }

    /// <summary>C[m, n] = op(A)·op(B) with the same row-major storage conventions as <see cref="Kernels.Gemm.Multiply"/>.</summary>
    public static unsafe void Multiply(float* a, float* b, float* c, int m, int n, int k, bool transposeA, bool transposeB)
    {
        Sgemm(RowMajor, transposeA ? Trans : NoTrans, transposeB ? Trans : NoTrans, m, n, k,
            1f, a, transposeA ? m : k, b, transposeB ? k : n, 0f, c, n);
    }
}
