using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// The register tile of the blocked GEMM: C[14, 32] (+)= Ap[14, kc]·Bp[kc, 32] from packed panels.
/// </summary>
/// <remarks>
/// Why 14×32: AVX-512 has 32 zmm registers. 14 rows × 2 vectors = 28 accumulators, plus 2 registers for the
/// row of B and 1 for the broadcast of A = 31, so nothing spills. Each k step issues 28 independent FMAs
/// against 2 vector loads and 14 broadcasts, enough independent chains to hide the 4-cycle FMA latency on both
/// FMA pipes (needs ≥ 8), and the 32-wide B row keeps the loads per FMA low. A 6×32 tile (12 accumulators)
/// would load B twice as often per FMA.
/// Packed layouts: Ap is [kc][14] (one column of the A panel per k step), Bp is [kc][32]. Each C element is
/// one FMA chain over p = 0..kc-1 in order, so the result does not depend on where the tile sits.
/// </remarks>
internal static unsafe class GemmMicroKernel
{
    public const int Rows = 14;
    public const int Columns = 32;

    /// <summary>
    /// Writes (or adds when <paramref name="add"/>) the full 14×32 tile at <paramref name="c"/> with row stride
    /// <paramref name="ldc"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(int kc, float* a, float* b, float* c, nint ldc, bool add)
    {
        Vector512<float> c0a = default, c0b = default, c1a = default, c1b = default;
        Vector512<float> c2a = default, c2b = default, c3a = default, c3b = default;
        Vector512<float> c4a = default, c4b = default, c5a = default, c5b = default;
        Vector512<float> c6a = default, c6b = default, c7a = default, c7b = default;
        Vector512<float> c8a = default, c8b = default, c9a = default, c9b = default;
        Vector512<float> c10a = default, c10b = default, c11a = default, c11b = default;
        Vector512<float> c12a = default, c12b = default, c13a = default, c13b = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> x;
            x = Vector512.Create(a[0]); c0a = Vector512.FusedMultiplyAdd(x, b0, c0a); c0b = Vector512.FusedMultiplyAdd(x, b1, c0b);
            x = Vector512.Create(a[1]); c1a = Vector512.FusedMultiplyAdd(x, b0, c1a); c1b = Vector512.FusedMultiplyAdd(x, b1, c1b);
            x = Vector512.Create(a[2]); c2a = Vector512.FusedMultiplyAdd(x, b0, c2a); c2b = Vector512.FusedMultiplyAdd(x, b1, c2b);
            x = Vector512.Create(a[3]); c3a = Vector512.FusedMultiplyAdd(x, b0, c3a); c3b = Vector512.FusedMultiplyAdd(x, b1, c3b);
            x = Vector512.Create(a[4]); c4a = Vector512.FusedMultiplyAdd(x, b0, c4a); c4b = Vector512.FusedMultiplyAdd(x, b1, c4b);
            x = Vector512.Create(a[5]); c5a = Vector512.FusedMultiplyAdd(x, b0, c5a); c5b = Vector512.FusedMultiplyAdd(x, b1, c5b);
            x = Vector512.Create(a[6]); c6a = Vector512.FusedMultiplyAdd(x, b0, c6a); c6b = Vector512.FusedMultiplyAdd(x, b1, c6b);
            x = Vector512.Create(a[7]); c7a = Vector512.FusedMultiplyAdd(x, b0, c7a); c7b = Vector512.FusedMultiplyAdd(x, b1, c7b);
            x = Vector512.Create(a[8]); c8a = Vector512.FusedMultiplyAdd(x, b0, c8a); c8b = Vector512.FusedMultiplyAdd(x, b1, c8b);
            x = Vector512.Create(a[9]); c9a = Vector512.FusedMultiplyAdd(x, b0, c9a); c9b = Vector512.FusedMultiplyAdd(x, b1, c9b);
            x = Vector512.Create(a[10]); c10a = Vector512.FusedMultiplyAdd(x, b0, c10a); c10b = Vector512.FusedMultiplyAdd(x, b1, c10b);
            x = Vector512.Create(a[11]); c11a = Vector512.FusedMultiplyAdd(x, b0, c11a); c11b = Vector512.FusedMultiplyAdd(x, b1, c11b);
            x = Vector512.Create(a[12]); c12a = Vector512.FusedMultiplyAdd(x, b0, c12a); c12b = Vector512.FusedMultiplyAdd(x, b1, c12b);
            x = Vector512.Create(a[13]); c13a = Vector512.FusedMultiplyAdd(x, b0, c13a); c13b = Vector512.FusedMultiplyAdd(x, b1, c13b);
            a += 14;
            b += 32;
        }

        Store(c, c0a, c0b, add); c += ldc;
        Store(c, c1a, c1b, add); c += ldc;
        Store(c, c2a, c2b, add); c += ldc;
        Store(c, c3a, c3b, add); c += ldc;
        Store(c, c4a, c4b, add); c += ldc;
        Store(c, c5a, c5b, add); c += ldc;
        Store(c, c6a, c6b, add); c += ldc;
        Store(c, c7a, c7b, add); c += ldc;
        Store(c, c8a, c8b, add); c += ldc;
        Store(c, c9a, c9b, add); c += ldc;
        Store(c, c10a, c10b, add); c += ldc;
        Store(c, c11a, c11b, add); c += ldc;
        Store(c, c12a, c12b, add); c += ldc;
        Store(c, c13a, c13b, add);
    }

    /// <summary>
    /// The first <paramref name="rows"/> (1..13) rows of <see cref="Tile"/> for a full-width edge panel (m not a
    /// multiple of 14): in groups of at most 7 rows, so an m = 128 product does not pay for 140 rows. Each element
    /// is the same FMA chain as in <see cref="Tile"/>.
    /// </summary>
    public static void ShortTile(int rows, int kc, float* a, float* b, float* c, nint ldc, bool add)
    {
        for (int r = 0; r < rows; r += 7)
        {
            float* ar = a + r;
            float* cr = c + r * ldc;
            switch (Math.Min(7, rows - r))
            {
                case 1: Short<S1>(kc, ar, b, cr, ldc, add); break;
                case 2: Short<S2>(kc, ar, b, cr, ldc, add); break;
                case 3: Short<S3>(kc, ar, b, cr, ldc, add); break;
                case 4: Short<S4>(kc, ar, b, cr, ldc, add); break;
                case 5: Short<S5>(kc, ar, b, cr, ldc, add); break;
                case 6: Short<S6>(kc, ar, b, cr, ldc, add); break;
                default: Short<S7>(kc, ar, b, cr, ldc, add); break;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Short<TR>(int kc, float* a, float* b, float* c, nint ldc, bool add)
        where TR : struct, IShortRows
    {
        int rows = TR.Value;
        Vector512<float> c0a = default, c0b = default, c1a = default, c1b = default;
        Vector512<float> c2a = default, c2b = default, c3a = default, c3b = default;
        Vector512<float> c4a = default, c4b = default, c5a = default, c5b = default;
        Vector512<float> c6a = default, c6b = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> x;
            x = Vector512.Create(a[0]); c0a = Vector512.FusedMultiplyAdd(x, b0, c0a); c0b = Vector512.FusedMultiplyAdd(x, b1, c0b);
            if (rows > 1) { x = Vector512.Create(a[1]); c1a = Vector512.FusedMultiplyAdd(x, b0, c1a); c1b = Vector512.FusedMultiplyAdd(x, b1, c1b); }
            if (rows > 2) { x = Vector512.Create(a[2]); c2a = Vector512.FusedMultiplyAdd(x, b0, c2a); c2b = Vector512.FusedMultiplyAdd(x, b1, c2b); }
            if (rows > 3) { x = Vector512.Create(a[3]); c3a = Vector512.FusedMultiplyAdd(x, b0, c3a); c3b = Vector512.FusedMultiplyAdd(x, b1, c3b); }
            if (rows > 4) { x = Vector512.Create(a[4]); c4a = Vector512.FusedMultiplyAdd(x, b0, c4a); c4b = Vector512.FusedMultiplyAdd(x, b1, c4b); }
            if (rows > 5) { x = Vector512.Create(a[5]); c5a = Vector512.FusedMultiplyAdd(x, b0, c5a); c5b = Vector512.FusedMultiplyAdd(x, b1, c5b); }
            if (rows > 6) { x = Vector512.Create(a[6]); c6a = Vector512.FusedMultiplyAdd(x, b0, c6a); c6b = Vector512.FusedMultiplyAdd(x, b1, c6b); }
            a += Rows;
            b += Columns;
        }

        Store(c, c0a, c0b, add); c += ldc;
        if (rows > 1) { Store(c, c1a, c1b, add); c += ldc; }
        if (rows > 2) { Store(c, c2a, c2b, add); c += ldc; }
        if (rows > 3) { Store(c, c3a, c3b, add); c += ldc; }
        if (rows > 4) { Store(c, c4a, c4b, add); c += ldc; }
        if (rows > 5) { Store(c, c5a, c5b, add); c += ldc; }
        if (rows > 6) Store(c, c6a, c6b, add);
    }

    private interface IShortRows
    {
        static abstract int Value { get; }
    }

    private struct S1 : IShortRows { public static int Value => 1; }

    private struct S2 : IShortRows { public static int Value => 2; }

    private struct S3 : IShortRows { public static int Value => 3; }

    private struct S4 : IShortRows { public static int Value => 4; }

    private struct S5 : IShortRows { public static int Value => 5; }

    private struct S6 : IShortRows { public static int Value => 6; }

    private struct S7 : IShortRows { public static int Value => 7; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> lo, Vector512<float> hi, bool add)
    {
        if (add)
        {
            lo += Vector512.Load(c);
            hi += Vector512.Load(c + 16);
        }
        lo.Store(c);
        hi.Store(c + 16);
    }
}
