using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Row-major matrix products over device views, with the contract of <see cref="Gemm.Multiply"/>:
/// C[m,n] (+)= op(A)[m,k]·op(B)[k,n], where op(A) = Aᵀ when transposeA (A stored [k,m]) and likewise for B.
/// On CUDA it is cuBLAS; elsewhere (ILGPU's CPU accelerator in tests) an ILGPU kernel with the same contract.
/// Launches are asynchronous on the accelerator's default stream.
/// </summary>
public interface IDeviceGemm : IDisposable
{
    /// <summary>
    /// Effectively computes c[i,j] = (accumulate ? c[i,j] : 0) + Σ_p op(a)[i,p]·op(b)[p,j]; NaN/±Inf propagate.
    /// Views must hold exactly m·k, k·n and m·n elements.
    /// </summary>
    void Multiply(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int n, int k,
        bool transposeA = false, bool transposeB = false, bool accumulate = false);
}

/// <summary>Chooses the matrix-product engine for a <see cref="KernelDevice"/>.</summary>
public static class DeviceGemm
{
    /// <summary>cuBLAS on CUDA (TF32 tensor cores only when <paramref name="allowTf32"/>), else the ILGPU kernel.</summary>
    public static IDeviceGemm Create(KernelDevice device, bool allowTf32 = false) =>
        device.IsCuda ? new CublasGemm(device, allowTf32) : new IlgpuGemm(device);

    internal static void CheckShapes(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (a.Length != (long)m * k) throw new ArgumentException($"a has {a.Length} elements, expected m*k = {(long)m * k}.", nameof(a));
        if (b.Length != (long)k * n) throw new ArgumentException($"b has {b.Length} elements, expected k*n = {(long)k * n}.", nameof(b));
        if (c.Length != (long)m * n) throw new ArgumentException($"c has {c.Length} elements, expected m*n = {(long)m * n}.", nameof(c));
    }
}

/// <summary>One thread per output element, k-loop in order: slow but exact in its summation order; for tests and non-CUDA accelerators.</summary>
public sealed class IlgpuGemm : IDeviceGemm
{
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> kernel;

    public IlgpuGemm(KernelDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        kernel = device.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(Kernel);
    }

    public void Multiply(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int n, int k,
        bool transposeA = false, bool transposeB = false, bool accumulate = false)
    {
        DeviceGemm.CheckShapes(a, b, c, m, n, k);
        if ((long)m * n == 0) return;
        kernel(m * n, a, b, c, new GemmShape
        {
            N = n, K = k, Accumulate = accumulate ? 1 : 0,
            // op(A)[i,p] = a[i*sAi + p*sAp]; op(B)[p,j] = b[p*sBp + j*sBj].
            SAi = transposeA ? 1 : k, SAp = transposeA ? m : 1,
            SBp = transposeB ? 1 : n, SBj = transposeB ? k : 1,
        });
    }

    public void Dispose()
    {
    }

    internal struct GemmShape
    {
        public int N, K, Accumulate, SAi, SAp, SBp, SBj;
    }

    private static void Kernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s)
    {
        int i = index / s.N, j = index % s.N;
        float acc = 0f;
        long ai = (long)i * s.SAi, bj = (long)j * s.SBj;
        for (int p = 0; p < s.K; p++) acc += a[ai + (long)p * s.SAp] * b[(long)p * s.SBp + bj];
        c[index] = s.Accumulate != 0 ? c[index] + acc : acc;
    }
}

/// <summary>
/// cuBLAS SGEMM on the accelerator's default stream. Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ,
/// so the operands are passed swapped with their row-major leading dimensions.
/// </summary>
public sealed class CublasGemm : IDeviceGemm
{
    private readonly CublasLibrary library;
    private nint handle;

    public CublasGemm(KernelDevice device, bool allowTf32)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.Accelerator is not CudaAccelerator cuda)
            throw new ArgumentException("cuBLAS needs a CUDA accelerator.", nameof(device));
        library = CublasLibrary.Load();
        cuda.Bind();
        handle = library.Create();
        library.SetStream(handle, ((CudaStream)cuda.DefaultStream).StreamPtr);
        library.SetMathMode(handle, allowTf32 ? CublasLibrary.Tf32TensorOpMath : CublasLibrary.DefaultMath);
    }

    public void Multiply(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int n, int k,
        bool transposeA = false, bool transposeB = false, bool accumulate = false)
    {
        DeviceGemm.CheckShapes(a, b, c, m, n, k);
        if ((long)m * n == 0) return;
        if (k == 0)
        {
            if (!accumulate) c.MemSetToZero();
            return;
        }

        var g = ColumnMajor(m, n, k, transposeA, transposeB);
        library.Sgemm(handle, g.OpFirst, g.OpSecond, g.M, g.N, g.K, 1f,
            b.LoadEffectiveAddressAsPtr(), g.LdFirst,
            a.LoadEffectiveAddressAsPtr(), g.LdSecond,
            accumulate ? 1f : 0f,
            c.LoadEffectiveAddressAsPtr(), g.LdC);
    }

    /// <summary>
    /// The column-major SGEMM arguments for row-major C[m,n] = op(A)·op(B): the first operand is B, the second A
    /// (Cᵀ = op(B)ᵀ·op(A)ᵀ), each transposed iff it was, with its row-major row length as leading dimension.
    /// </summary>
    internal static ColumnMajorGemm ColumnMajor(int m, int n, int k, bool transposeA, bool transposeB) => new(
        transposeB ? CublasLibrary.OpT : CublasLibrary.OpN, transposeA ? CublasLibrary.OpT : CublasLibrary.OpN,
        n, m, k, transposeB ? k : n, transposeA ? m : k, n);

    /// <summary>Arguments of cublasSgemm(opFirst, opSecond, M, N, K, first, ldFirst, second, ldSecond, C, ldC).</summary>
    internal readonly record struct ColumnMajorGemm(int OpFirst, int OpSecond, int M, int N, int K, int LdFirst, int LdSecond, int LdC);

    public void Dispose()
    {
        if (handle == 0) return;
        library.Destroy(handle);
        handle = 0;
    }
}
