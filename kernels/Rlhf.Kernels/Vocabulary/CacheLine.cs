using System.Runtime.CompilerServices;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>64-byte cache lines, for kernels that align their 16-float vectors: one that straddles two lines costs two
/// accesses.</summary>
internal static unsafe class CacheLine
{
    /// <summary>
    /// Floats from <paramref name="start"/> to the next 64-byte boundary (0–15): 0 when it is on one, and 0 when it is
    /// not float-aligned (no whole float then starts on a boundary).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int FloatsToBoundary(float* start)
    {
        nuint address = (nuint)start;
        return (address & 3) != 0 ? 0 : (int)((64 - (address & 63)) & 63) / sizeof(float);
    }

    /// <inheritdoc cref="FloatsToBoundary(float*)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int FloatsToBoundary(ref float start) => FloatsToBoundary((float*)Unsafe.AsPointer(ref start));
}
