namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// Detects two input streams that this class of machine reads slowly when they are walked side by side: buffers whose
/// addresses differ by a non-zero multiple of 256 MiB (to within 4 KiB), which two back-to-back 256 MiB arrays get.
/// </summary>
/// <remarks>
/// Measured on the 2-core EPYC box (one process, 1 thread, 2048 × 32000 logits, benchmarks/README.md): reading both
/// buffers interleaved took 32–43 ms at a distance of 2^28, 2^29 or 2^28 + 64 bytes against 22–26 ms at 2^27,
/// 2^28 + 8 KiB or 2^28 + 4 MiB, and the full-vocabulary KL 62–83 ms against 29–31 ms. Reading one stream 32 KiB
/// ahead with software prefetches moves the two streams apart and brings the aliased case back to 30–32 ms; at any
/// other distance the same prefetches cost 20–40 %, so they are used only where this test says so. Where the streams
/// alias, loads that straddle two cache lines cost a third more again, so there the KL scan also aligns its loads to
/// the policy row (<see cref="CacheLine.FloatsToBoundary(float*)"/>; two GC arrays' rows are equally aligned).
/// </remarks>
internal static unsafe class StreamAliasing
{
    /// <summary>How far ahead, in floats, the second stream is prefetched when the two alias (32 KiB).</summary>
    public const int PrefetchDistance = 8192;

    private const long Period = 1L << 28;
    private const long Window = 4096;

    /// <summary>True when <paramref name="first"/> and <paramref name="second"/> are at least 256 MiB apart and their
    /// distance is within 4 KiB of a multiple of 256 MiB.</summary>
    public static bool Conflicts(void* first, void* second)
    {
        long distance = Math.Abs((long)second - (long)first);
        if (distance < Period - Window) return false;
        long offset = distance & (Period - 1);
        return offset < Window || offset > Period - Window;
    }
}
