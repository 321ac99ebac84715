using System.Runtime.InteropServices;

namespace Rlhf.Kernels.Device;

/// <summary>
/// The few cuBLAS entry points the engine uses, bound at run time from whichever libcublas the machine has
/// (no CUDA toolkit is needed to build). Column-major, as cuBLAS is; callers map row-major products themselves.
/// </summary>
internal sealed unsafe class CublasLibrary
{
    /// <summary>cublasOperation_t.</summary>
    public const int OpN = 0, OpT = 1;

    /// <summary>cublasMath_t: CUBLAS_DEFAULT_MATH and CUBLAS_TF32_TENSOR_OP_MATH.</summary>
    public const int DefaultMath = 0, Tf32TensorOpMath = 3;

    private static readonly string[] Candidates =
    [
        "libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
        "/usr/local/cuda/lib64/libcublas.so", "/usr/lib/x86_64-linux-gnu/libcublas.so",
    ];

    private readonly delegate* unmanaged<nint*, int> create;
    private readonly delegate* unmanaged<nint, int> destroy;
    private readonly delegate* unmanaged<nint, nint, int> setStream;
    private readonly delegate* unmanaged<nint, int, int> setMathMode;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int> sgemm;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int> sgemmStridedBatched;

    private CublasLibrary(nint library)
    {
        create = (delegate* unmanaged<nint*, int>)NativeLibrary.GetExport(library, "cublasCreate_v2");
        destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "cublasDestroy_v2");
        setStream = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "cublasSetStream_v2");
        setMathMode = (delegate* unmanaged<nint, int, int>)NativeLibrary.GetExport(library, "cublasSetMathMode");
        sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)
            NativeLibrary.GetExport(library, "cublasSgemm_v2");
        sgemmStridedBatched = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)
            NativeLibrary.GetExport(library, "cublasSgemmStridedBatched");
    }

    /// <summary>Environment variable naming the libcublas file to use (e.g. the one inside a PyTorch wheel).</summary>
    public const string PathVariable = "RLHF_CUBLAS";

    /// <summary>Loads libcublas (<see cref="PathVariable"/> first), or throws <see cref="InvalidOperationException"/> listing where it looked.</summary>
    public static CublasLibrary Load()
    {
        string? explicitPath = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(explicitPath))
        {
            if (NativeLibrary.TryLoad(explicitPath, out nint chosen)) return new CublasLibrary(chosen);
            throw new InvalidOperationException($"{PathVariable}={explicitPath} could not be loaded as cuBLAS.");
        }

        foreach (string name in Candidates)
        {
            if (NativeLibrary.TryLoad(name, out nint handle)) return new CublasLibrary(handle);
        }

        throw new InvalidOperationException(
            $"CUDA was requested but cuBLAS could not be loaded (tried {string.Join(", ", Candidates)}); install the CUDA runtime's libcublas, add its folder to LD_LIBRARY_PATH or set {PathVariable} to the file.");
    }

    public nint Create()
    {
        nint h;
        Check(create(&h), "cublasCreate_v2");
        return h;
    }

    public void Destroy(nint handle) => Check(destroy(handle), "cublasDestroy_v2");

    public void SetStream(nint handle, nint stream) => Check(setStream(handle, stream), "cublasSetStream_v2");

    public void SetMathMode(nint handle, int mode) => Check(setMathMode(handle, mode), "cublasSetMathMode");

    public void Sgemm(nint handle, int opA, int opB, int m, int n, int k, float alpha, nint a, int lda, nint b, int ldb, float beta, nint c, int ldc) =>
        Check(sgemm(handle, opA, opB, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc), "cublasSgemm_v2");

    public void SgemmStridedBatched(nint handle, int opA, int opB, int m, int n, int k, float alpha, nint a, int lda, long strideA,
        nint b, int ldb, long strideB, float beta, nint c, int ldc, long strideC, int batch) =>
        Check(sgemmStridedBatched(handle, opA, opB, m, n, k, &alpha, a, lda, strideA, b, ldb, strideB, &beta, c, ldc, strideC, batch), "cublasSgemmStridedBatched");

    private static void Check(int status, string call)
    {
        if (status != 0) throw new InvalidOperationException($"{call} failed with cublasStatus_t {status}.");
    }
}
