using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// Per-thread packing buffers for the blocked GEMM, allocated on first use and kept for the thread's lifetime.
/// </summary>
/// <remarks>
/// A fresh large buffer costs ~20 µs per 4 KiB page on first touch, more than a whole small GEMM, so buffers are
/// cached per thread ([ThreadStatic]: no locking, and Parallel.For workers each keep their own). Arrays live on the
/// pinned object heap so the raw pointers stay valid; they only grow, so steady-state calls allocate nothing.
/// </remarks>
internal static unsafe class GemmBuffers
{
    [ThreadStatic] private static float[]? packedA;
    [ThreadStatic] private static float[]? packedB;

    /// <summary>A 64-byte aligned buffer of at least <paramref name="length"/> floats for packed A panels.</summary>
    public static float* A(int length) => Get(ref packedA, length);

    /// <summary>A 64-byte aligned buffer of at least <paramref name="length"/> floats for packed B panels.</summary>
    public static float* B(int length) => Get(ref packedB, length);

    private static float* Get(ref float[]? buffer, int length)
    {
        const int alignFloats = 16;
        if (buffer is null || buffer.Length < length + alignFloats)
        {
            buffer = GC.AllocateUninitializedArray<float>(length + alignFloats, pinned: true);
        }

        nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (float*)((start + 63) & ~(nint)63);
    }
}
