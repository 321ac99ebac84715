using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// Packing buffers for the blocked GEMM, rented per call from a process-wide pool and kept for reuse.
/// </summary>
/// <remarks>
/// A fresh large buffer costs ~20 µs per 4 KiB page on first touch (a 3.5 MiB workspace: ~18 ms, more than the
/// engine's GEMMs), so workspaces are never freed. A pool rather than [ThreadStatic]: thread-pool workers retire
/// when idle and new ones would pay that cost again, while the pool holds only as many workspaces as GEMMs ever ran
/// at once, and hands out the most recently used (cache-warm) one first. Arrays live on the pinned object heap so
/// raw pointers stay valid; they only grow, so steady-state calls allocate nothing.
/// </remarks>
internal static class GemmBuffers
{
    private static readonly Stack<GemmWorkspace> Free = new();

    public static GemmWorkspace Rent()
    {
        lock (Free)
        {
            if (Free.Count > 0) return Free.Pop();
        }

        return new GemmWorkspace();
    }

    public static void Return(GemmWorkspace workspace)
    {
        lock (Free)
        {
            Free.Push(workspace);
        }
    }
}

/// <summary>One thread's packed A and B buffers (see <see cref="GemmBuffers"/>).</summary>
internal sealed unsafe class GemmWorkspace
{
    private float[]? packedA;
    private float[]? packedB;

    /// <summary>A 64-byte aligned buffer of at least <paramref name="length"/> floats for packed A panels.</summary>
    public float* A(int length) => Get(ref packedA, length);

    /// <summary>A 64-byte aligned buffer of at least <paramref name="length"/> floats for packed B panels.</summary>
    public float* B(int length) => Get(ref packedB, length);

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
