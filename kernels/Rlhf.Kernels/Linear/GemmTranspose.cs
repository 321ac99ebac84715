using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// 16×16 in-register transposes for the packing steps that turn rows into panel columns (row-major A, and Bᵀ, the
/// forward pass's x·Wᵀ). A scalar strided copy costs ~1–2 cycles per element, which at the engine's k = 384 is ~10%
/// of the GEMM; this costs 64 two-source permutes per 256 elements.
/// </summary>
/// <remarks>
/// Butterfly: stage b swaps bit b of the row and column index between rows r and r | 2^b, one vpermt2ps per output
/// row. After the four stages element (r, c) sits at (c, r). Pure data movement, so results are bit-identical to
/// the scalar copy.
/// </remarks>
internal static unsafe class GemmTranspose
{
    private static readonly Vector512<int>[] LowIndex = new Vector512<int>[4];
    private static readonly Vector512<int>[] HighIndex = new Vector512<int>[4];

    static GemmTranspose()
    {
        int* low = stackalloc int[16];
        int* high = stackalloc int[16];
        for (int b = 0; b < 4; b++)
        {
            int bit = 1 << b;
            for (int c = 0; c < 16; c++)
            {
                // An index ≥ 16 selects from the second source (row r | 2^b).
                low[c] = (c & bit) == 0 ? c : 16 + (c ^ bit);
                high[c] = (c & bit) == 0 ? c ^ bit : 16 + c;
            }

            LowIndex[b] = Vector512.Load(low);
            HighIndex[b] = Vector512.Load(high);
        }
    }

    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>
    /// Reads <paramref name="rows"/> (≤ 16) rows of 16 floats at <paramref name="src"/> + r·<paramref name="srcStride"/>
    /// (missing rows read as zero) and stores column q as 16 floats at <paramref name="dst"/> + q·<paramref name="dstStride"/>,
    /// in increasing q. With dstStride &lt; 16 each store's tail is overwritten by the next one, and the last store
    /// writes 16 − dstStride floats past column 15's slot: the caller leaves room for that.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block16(float* src, nint srcStride, int rows, float* dst, nint dstStride)
    {
        Vector512<float> r0 = Row(src, srcStride, 0, rows), r1 = Row(src, srcStride, 1, rows);
        Vector512<float> r2 = Row(src, srcStride, 2, rows), r3 = Row(src, srcStride, 3, rows);
        Vector512<float> r4 = Row(src, srcStride, 4, rows), r5 = Row(src, srcStride, 5, rows);
        Vector512<float> r6 = Row(src, srcStride, 6, rows), r7 = Row(src, srcStride, 7, rows);
        Vector512<float> r8 = Row(src, srcStride, 8, rows), r9 = Row(src, srcStride, 9, rows);
        Vector512<float> r10 = Row(src, srcStride, 10, rows), r11 = Row(src, srcStride, 11, rows);
        Vector512<float> r12 = Row(src, srcStride, 12, rows), r13 = Row(src, srcStride, 13, rows);
        Vector512<float> r14 = Row(src, srcStride, 14, rows), r15 = Row(src, srcStride, 15, rows);

        Vector512<int> lo = LowIndex[0], hi = HighIndex[0];
        Swap(ref r0, ref r1, lo, hi); Swap(ref r2, ref r3, lo, hi); Swap(ref r4, ref r5, lo, hi); Swap(ref r6, ref r7, lo, hi);
        Swap(ref r8, ref r9, lo, hi); Swap(ref r10, ref r11, lo, hi); Swap(ref r12, ref r13, lo, hi); Swap(ref r14, ref r15, lo, hi);

        lo = LowIndex[1];
        hi = HighIndex[1];
        Swap(ref r0, ref r2, lo, hi); Swap(ref r1, ref r3, lo, hi); Swap(ref r4, ref r6, lo, hi); Swap(ref r5, ref r7, lo, hi);
        Swap(ref r8, ref r10, lo, hi); Swap(ref r9, ref r11, lo, hi); Swap(ref r12, ref r14, lo, hi); Swap(ref r13, ref r15, lo, hi);

        lo = LowIndex[2];
        hi = HighIndex[2];
        Swap(ref r0, ref r4, lo, hi); Swap(ref r1, ref r5, lo, hi); Swap(ref r2, ref r6, lo, hi); Swap(ref r3, ref r7, lo, hi);
        Swap(ref r8, ref r12, lo, hi); Swap(ref r9, ref r13, lo, hi); Swap(ref r10, ref r14, lo, hi); Swap(ref r11, ref r15, lo, hi);

        lo = LowIndex[3];
        hi = HighIndex[3];
        Swap(ref r0, ref r8, lo, hi); Swap(ref r1, ref r9, lo, hi); Swap(ref r2, ref r10, lo, hi); Swap(ref r3, ref r11, lo, hi);
        Swap(ref r4, ref r12, lo, hi); Swap(ref r5, ref r13, lo, hi); Swap(ref r6, ref r14, lo, hi); Swap(ref r7, ref r15, lo, hi);

        r0.Store(dst + 0 * dstStride); r1.Store(dst + 1 * dstStride); r2.Store(dst + 2 * dstStride); r3.Store(dst + 3 * dstStride);
        r4.Store(dst + 4 * dstStride); r5.Store(dst + 5 * dstStride); r6.Store(dst + 6 * dstStride); r7.Store(dst + 7 * dstStride);
        r8.Store(dst + 8 * dstStride); r9.Store(dst + 9 * dstStride); r10.Store(dst + 10 * dstStride); r11.Store(dst + 11 * dstStride);
        r12.Store(dst + 12 * dstStride); r13.Store(dst + 13 * dstStride); r14.Store(dst + 14 * dstStride); r15.Store(dst + 15 * dstStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* src, nint stride, int r, int rows)
        => r < rows ? Vector512.Load(src + r * stride) : Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Swap(ref Vector512<float> a, ref Vector512<float> b, Vector512<int> lo, Vector512<int> hi)
    {
        Vector512<float> x = Avx512F.PermuteVar16x32x2(a, lo, b);
        b = Avx512F.PermuteVar16x32x2(a, hi, b);
        a = x;
    }
}
