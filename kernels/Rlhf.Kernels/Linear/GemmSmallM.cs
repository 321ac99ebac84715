using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// GEMV-like path for few rows of C (decode: m = 1..8): no packing of B, which would cost as much as the product.
/// </summary>
/// <remarks>
/// With m this small the product is bound by reading B once, so B is streamed exactly once and each slice of it
/// serves every row of A while still in L1. Up to 4 rows go in one group of 4 × 64 columns, 5 to 8 rows in one
/// group of 8 × 32 columns (generic over the row count, so the JIT drops the unused accumulators): B is read once
/// whatever m ≤ 8. op(B) = B [k, n]: each C element is one FMA chain over p in order (vectorized
/// across 16 columns). op(B) = Bᵀ with B stored [n, k]: each C element is a dot product of two contiguous rows
/// (16 partial sums in k order, a fixed-order horizontal sum, then the k tail). Either way an element's value does
/// not depend on how columns are grouped or split between threads.
/// </remarks>
internal static unsafe class GemmSmallM
{
    public const int MaxRows = 8;

    /// <summary>Multiply-adds below which one thread is used.</summary>
    private const long MinWorkPerThread = 1L << 20;

    /// <summary>Column granularity of the thread split (keeps each thread's slice of C 64-byte aligned relative to the rows).</summary>
    private const int ColumnUnit = 64;

    /// <param name="aRows">op(A) as contiguous rows: row i at aRows + i·k.</param>
    public static void Multiply(float* aRows, float* b, float* c, int m, int n, int k, bool transposeB, bool accumulate)
    {
        int units = (n + ColumnUnit - 1) / ColumnUnit;
        int threads = Gemm.OnThisThread ? 1 : Math.Min(units, KernelParallelism.ThreadsFor((long)m * n * k, MinWorkPerThread));
        if (threads <= 1)
        {
            Columns(aRows, b, c, m, n, k, transposeB, accumulate, 0, n);
            return;
        }

        nint pa = (nint)aRows, pb = (nint)b, pc = (nint)c;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int j0 = (int)((long)units * t / threads) * ColumnUnit;
            int j1 = Math.Min(n, (int)((long)units * (t + 1) / threads) * ColumnUnit);
            Columns((float*)pa, (float*)pb, (float*)pc, m, n, k, transposeB, accumulate, j0, j1);
        });
    }

    private static void Columns(float* aRows, float* b, float* c, int m, int n, int k, bool transposeB, bool accumulate, int j0, int j1)
    {
        if (m > 4)
        {
            // 5..8 rows in one pass over B: two groups of 4 would stream B (the LM head: 77 MB) twice.
            switch (m)
            {
                case 5: Wide<R5>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
                case 6: Wide<R6>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
                case 7: Wide<R7>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
                default: Wide<R8>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
            }

            return;
        }

        switch (m)
        {
            case 1: Group<R1>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
            case 2: Group<R2>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
            case 3: Group<R3>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
            default: Group<R4>(aRows, b, c, n, k, transposeB, accumulate, j0, j1); break;
        }
    }

    private static void Wide<TR>(float* a, float* b, float* c, int n, int k, bool transposeB, bool accumulate, int j0, int j1)
        where TR : struct, IRowCount
    {
        if (transposeB)
        {
            WideDots<TR>(a, b, c, n, k, accumulate, j0, j1);
        }
        else
        {
            WideAxpys<TR>(a, b, c, n, k, accumulate, j0, j1);
        }
    }

    private static void Group<TR>(float* a, float* b, float* c, int n, int k, bool transposeB, bool accumulate, int j0, int j1)
        where TR : struct, IRowCount
    {
        if (transposeB)
        {
            Dots<TR>(a, b, c, n, k, accumulate, j0, j1);
        }
        else
        {
            Axpys<TR>(a, b, c, n, k, accumulate, j0, j1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, Vector512<float> v, bool accumulate)
    {
        if (accumulate) v += Vector512.Load(c);
        v.Store(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, float v, bool accumulate) => *c = accumulate ? *c + v : v;

    /// <summary>C[r, j] (+)= Σ_p A[r, p]·B[p, j] for B stored [k, n], r &lt; TR.Value, j in [j0, j1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Axpys<TR>(float* a, float* b, float* c, int n, int k, bool accumulate, int j0, int j1)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        float* a0 = a, a1 = a + k, a2 = a1 + k, a3 = a2 + k;
        float* c0 = c, c1 = c + n, c2 = c1 + n, c3 = c2 + n;
        int j = j0;
        for (; j + 64 <= j1; j += 64)
        {
            Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
            Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
            Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
            Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
            float* bp = b + j;
            for (int p = 0; p < k; p++, bp += n)
            {
                Vector512<float> b0 = Vector512.Load(bp), b1 = Vector512.Load(bp + 16), b2 = Vector512.Load(bp + 32), b3 = Vector512.Load(bp + 48);
                Vector512<float> x;
                x = Vector512.Create(a0[p]);
                s00 = Vector512.FusedMultiplyAdd(x, b0, s00);
                s01 = Vector512.FusedMultiplyAdd(x, b1, s01);
                s02 = Vector512.FusedMultiplyAdd(x, b2, s02);
                s03 = Vector512.FusedMultiplyAdd(x, b3, s03);
                if (rows > 1)
                {
                    x = Vector512.Create(a1[p]);
                    s10 = Vector512.FusedMultiplyAdd(x, b0, s10);
                    s11 = Vector512.FusedMultiplyAdd(x, b1, s11);
                    s12 = Vector512.FusedMultiplyAdd(x, b2, s12);
                    s13 = Vector512.FusedMultiplyAdd(x, b3, s13);
                }
                if (rows > 2)
                {
                    x = Vector512.Create(a2[p]);
                    s20 = Vector512.FusedMultiplyAdd(x, b0, s20);
                    s21 = Vector512.FusedMultiplyAdd(x, b1, s21);
                    s22 = Vector512.FusedMultiplyAdd(x, b2, s22);
                    s23 = Vector512.FusedMultiplyAdd(x, b3, s23);
                }
                if (rows > 3)
                {
                    x = Vector512.Create(a3[p]);
                    s30 = Vector512.FusedMultiplyAdd(x, b0, s30);
                    s31 = Vector512.FusedMultiplyAdd(x, b1, s31);
                    s32 = Vector512.FusedMultiplyAdd(x, b2, s32);
                    s33 = Vector512.FusedMultiplyAdd(x, b3, s33);
                }
            }

            Put(c0 + j + 0, s00, accumulate); Put(c0 + j + 16, s01, accumulate); Put(c0 + j + 32, s02, accumulate); Put(c0 + j + 48, s03, accumulate);
            if (rows > 1)
            {
                Put(c1 + j + 0, s10, accumulate);
                Put(c1 + j + 16, s11, accumulate);
                Put(c1 + j + 32, s12, accumulate);
                Put(c1 + j + 48, s13, accumulate);
            }
            if (rows > 2)
            {
                Put(c2 + j + 0, s20, accumulate);
                Put(c2 + j + 16, s21, accumulate);
                Put(c2 + j + 32, s22, accumulate);
                Put(c2 + j + 48, s23, accumulate);
            }
            if (rows > 3)
            {
                Put(c3 + j + 0, s30, accumulate);
                Put(c3 + j + 16, s31, accumulate);
                Put(c3 + j + 32, s32, accumulate);
                Put(c3 + j + 48, s33, accumulate);
            }
        }

        for (; j + 16 <= j1; j += 16)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            float* bp = b + j;
            for (int p = 0; p < k; p++, bp += n)
            {
                Vector512<float> b0 = Vector512.Load(bp);
                s0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[p]), b0, s0);
                if (rows > 1) s1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[p]), b0, s1);
                if (rows > 2) s2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[p]), b0, s2);
                if (rows > 3) s3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[p]), b0, s3);
            }

            Put(c0 + j, s0, accumulate);
            if (rows > 1) Put(c1 + j, s1, accumulate);
            if (rows > 2) Put(c2 + j, s2, accumulate);
            if (rows > 3) Put(c3 + j, s3, accumulate);
        }

        for (; j < j1; j++)
        {
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            float* bp = b + j;
            for (int p = 0; p < k; p++, bp += n)
            {
                float b0 = *bp;
                s0 = MathF.FusedMultiplyAdd(a0[p], b0, s0);
                if (rows > 1) s1 = MathF.FusedMultiplyAdd(a1[p], b0, s1);
                if (rows > 2) s2 = MathF.FusedMultiplyAdd(a2[p], b0, s2);
                if (rows > 3) s3 = MathF.FusedMultiplyAdd(a3[p], b0, s3);
            }

            Put(c0 + j, s0, accumulate);
            if (rows > 1) Put(c1 + j, s1, accumulate);
            if (rows > 2) Put(c2 + j, s2, accumulate);
            if (rows > 3) Put(c3 + j, s3, accumulate);
        }
    }

    /// <summary>C[r, j] (+)= Σ_p A[r, p]·B[j, p] for B stored [n, k], r &lt; TR.Value, j in [j0, j1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dots<TR>(float* a, float* b, float* c, int n, int k, bool accumulate, int j0, int j1)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        int k16 = k & ~15;
        float* a0 = a, a1 = a + k, a2 = a1 + k, a3 = a2 + k;
        float* c0 = c, c1 = c + n, c2 = c1 + n, c3 = c2 + n;
        for (int j = j0; j < j1; j += 4)
        {
            // Past the last column, repeat the last row of B; those sums are computed and dropped.
            int last = j1 - 1;
            float* w0 = b + (nint)j * k;
            float* w1 = b + (nint)Math.Min(j + 1, last) * k;
            float* w2 = b + (nint)Math.Min(j + 2, last) * k;
            float* w3 = b + (nint)Math.Min(j + 3, last) * k;
            Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
            Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
            Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
            Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
            for (int p = 0; p < k16; p += 16)
            {
                Vector512<float> b0 = Vector512.Load(w0 + p), b1 = Vector512.Load(w1 + p), b2 = Vector512.Load(w2 + p), b3 = Vector512.Load(w3 + p);
                Vector512<float> x;
                x = Vector512.Load(a0 + p);
                s00 = Vector512.FusedMultiplyAdd(x, b0, s00);
                s01 = Vector512.FusedMultiplyAdd(x, b1, s01);
                s02 = Vector512.FusedMultiplyAdd(x, b2, s02);
                s03 = Vector512.FusedMultiplyAdd(x, b3, s03);
                if (rows > 1)
                {
                    x = Vector512.Load(a1 + p);
                    s10 = Vector512.FusedMultiplyAdd(x, b0, s10);
                    s11 = Vector512.FusedMultiplyAdd(x, b1, s11);
                    s12 = Vector512.FusedMultiplyAdd(x, b2, s12);
                    s13 = Vector512.FusedMultiplyAdd(x, b3, s13);
                }
                if (rows > 2)
                {
                    x = Vector512.Load(a2 + p);
                    s20 = Vector512.FusedMultiplyAdd(x, b0, s20);
                    s21 = Vector512.FusedMultiplyAdd(x, b1, s21);
                    s22 = Vector512.FusedMultiplyAdd(x, b2, s22);
                    s23 = Vector512.FusedMultiplyAdd(x, b3, s23);
                }
                if (rows > 3)
                {
                    x = Vector512.Load(a3 + p);
                    s30 = Vector512.FusedMultiplyAdd(x, b0, s30);
                    s31 = Vector512.FusedMultiplyAdd(x, b1, s31);
                    s32 = Vector512.FusedMultiplyAdd(x, b2, s32);
                    s33 = Vector512.FusedMultiplyAdd(x, b3, s33);
                }
            }

            int count = Math.Min(4, j1 - j);
            Finish(a0, w0, w1, w2, w3, k16, k, s00, s01, s02, s03, c0 + j, count, accumulate);
            if (rows > 1) Finish(a1, w0, w1, w2, w3, k16, k, s10, s11, s12, s13, c1 + j, count, accumulate);
            if (rows > 2) Finish(a2, w0, w1, w2, w3, k16, k, s20, s21, s22, s23, c2 + j, count, accumulate);
            if (rows > 3) Finish(a3, w0, w1, w2, w3, k16, k, s30, s31, s32, s33, c3 + j, count, accumulate);
        }
    }

    /// <summary>
    /// C[r, j] (+)= Σ_p A[r, p]·B[p, j] for B stored [k, n], 4 &lt; r ≤ TR.Value ≤ 8 rows at once, j in [j0, j1):
    /// 8 rows × 32 columns of accumulators, the same per-element FMA chain as <see cref="Axpys{TR}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WideAxpys<TR>(float* a, float* b, float* c, int n, int k, bool accumulate, int j0, int j1)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        float* a0 = a, a1 = a + k, a2 = a1 + k, a3 = a2 + k, a4 = a3 + k, a5 = a4 + k, a6 = a5 + k, a7 = a6 + k;
        int j = j0;
        for (; j + 32 <= j1; j += 32)
        {
            Vector512<float> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector512<float> s20 = default, s21 = default, s30 = default, s31 = default;
            Vector512<float> s40 = default, s41 = default, s50 = default, s51 = default;
            Vector512<float> s60 = default, s61 = default, s70 = default, s71 = default;
            float* bp = b + j;
            for (int p = 0; p < k; p++, bp += n)
            {
                Vector512<float> b0 = Vector512.Load(bp), b1 = Vector512.Load(bp + 16);
                Vector512<float> x;
                x = Vector512.Create(a0[p]); s00 = Vector512.FusedMultiplyAdd(x, b0, s00); s01 = Vector512.FusedMultiplyAdd(x, b1, s01);
                x = Vector512.Create(a1[p]); s10 = Vector512.FusedMultiplyAdd(x, b0, s10); s11 = Vector512.FusedMultiplyAdd(x, b1, s11);
                x = Vector512.Create(a2[p]); s20 = Vector512.FusedMultiplyAdd(x, b0, s20); s21 = Vector512.FusedMultiplyAdd(x, b1, s21);
                x = Vector512.Create(a3[p]); s30 = Vector512.FusedMultiplyAdd(x, b0, s30); s31 = Vector512.FusedMultiplyAdd(x, b1, s31);
                x = Vector512.Create(a4[p]); s40 = Vector512.FusedMultiplyAdd(x, b0, s40); s41 = Vector512.FusedMultiplyAdd(x, b1, s41);
                if (rows > 5) { x = Vector512.Create(a5[p]); s50 = Vector512.FusedMultiplyAdd(x, b0, s50); s51 = Vector512.FusedMultiplyAdd(x, b1, s51); }
                if (rows > 6) { x = Vector512.Create(a6[p]); s60 = Vector512.FusedMultiplyAdd(x, b0, s60); s61 = Vector512.FusedMultiplyAdd(x, b1, s61); }
                if (rows > 7) { x = Vector512.Create(a7[p]); s70 = Vector512.FusedMultiplyAdd(x, b0, s70); s71 = Vector512.FusedMultiplyAdd(x, b1, s71); }
            }

            float* cj = c + j;
            Put(cj, s00, accumulate); Put(cj + 16, s01, accumulate); cj += n;
            Put(cj, s10, accumulate); Put(cj + 16, s11, accumulate); cj += n;
            Put(cj, s20, accumulate); Put(cj + 16, s21, accumulate); cj += n;
            Put(cj, s30, accumulate); Put(cj + 16, s31, accumulate); cj += n;
            Put(cj, s40, accumulate); Put(cj + 16, s41, accumulate); cj += n;
            if (rows > 5) { Put(cj, s50, accumulate); Put(cj + 16, s51, accumulate); cj += n; }
            if (rows > 6) { Put(cj, s60, accumulate); Put(cj + 16, s61, accumulate); cj += n; }
            if (rows > 7) { Put(cj, s70, accumulate); Put(cj + 16, s71, accumulate); }
        }

        if (j < j1)
        {
            // The last < 32 columns: the 4-row kernel's 16-wide and scalar loops, twice.
            Axpys<R4>(a, b, c, n, k, accumulate, j, j1);
            switch (rows)
            {
                case 5: Axpys<R1>(a4, b, c + (nint)4 * n, n, k, accumulate, j, j1); break;
                case 6: Axpys<R2>(a4, b, c + (nint)4 * n, n, k, accumulate, j, j1); break;
                case 7: Axpys<R3>(a4, b, c + (nint)4 * n, n, k, accumulate, j, j1); break;
                default: Axpys<R4>(a4, b, c + (nint)4 * n, n, k, accumulate, j, j1); break;
            }
        }
    }

    /// <summary>
    /// C[r, j] (+)= Σ_p A[r, p]·B[j, p] for B stored [n, k], 4 &lt; r ≤ TR.Value ≤ 8 rows at once, two columns per
    /// step (16 accumulators): each B row is read once for every A row; the per-element sum is the same as
    /// <see cref="Dots{TR}"/>'s.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WideDots<TR>(float* a, float* b, float* c, int n, int k, bool accumulate, int j0, int j1)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        int k16 = k & ~15;
        float* a0 = a, a1 = a + k, a2 = a1 + k, a3 = a2 + k, a4 = a3 + k, a5 = a4 + k, a6 = a5 + k, a7 = a6 + k;
        for (int j = j0; j < j1; j += 2)
        {
            // Past the last column, repeat the last row of B; that sum is computed and dropped.
            float* w0 = b + (nint)j * k;
            float* w1 = b + (nint)Math.Min(j + 1, j1 - 1) * k;
            bool both = j + 1 < j1;
            Vector512<float> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector512<float> s20 = default, s21 = default, s30 = default, s31 = default;
            Vector512<float> s40 = default, s41 = default, s50 = default, s51 = default;
            Vector512<float> s60 = default, s61 = default, s70 = default, s71 = default;
            for (int p = 0; p < k16; p += 16)
            {
                Vector512<float> b0 = Vector512.Load(w0 + p), b1 = Vector512.Load(w1 + p);
                Vector512<float> x;
                x = Vector512.Load(a0 + p); s00 = Vector512.FusedMultiplyAdd(x, b0, s00); s01 = Vector512.FusedMultiplyAdd(x, b1, s01);
                x = Vector512.Load(a1 + p); s10 = Vector512.FusedMultiplyAdd(x, b0, s10); s11 = Vector512.FusedMultiplyAdd(x, b1, s11);
                x = Vector512.Load(a2 + p); s20 = Vector512.FusedMultiplyAdd(x, b0, s20); s21 = Vector512.FusedMultiplyAdd(x, b1, s21);
                x = Vector512.Load(a3 + p); s30 = Vector512.FusedMultiplyAdd(x, b0, s30); s31 = Vector512.FusedMultiplyAdd(x, b1, s31);
                x = Vector512.Load(a4 + p); s40 = Vector512.FusedMultiplyAdd(x, b0, s40); s41 = Vector512.FusedMultiplyAdd(x, b1, s41);
                if (rows > 5) { x = Vector512.Load(a5 + p); s50 = Vector512.FusedMultiplyAdd(x, b0, s50); s51 = Vector512.FusedMultiplyAdd(x, b1, s51); }
                if (rows > 6) { x = Vector512.Load(a6 + p); s60 = Vector512.FusedMultiplyAdd(x, b0, s60); s61 = Vector512.FusedMultiplyAdd(x, b1, s61); }
                if (rows > 7) { x = Vector512.Load(a7 + p); s70 = Vector512.FusedMultiplyAdd(x, b0, s70); s71 = Vector512.FusedMultiplyAdd(x, b1, s71); }
            }

            float* cj = c + j;
            Pair(a0, w0, w1, k16, k, s00, s01, cj, both, accumulate); cj += n;
            Pair(a1, w0, w1, k16, k, s10, s11, cj, both, accumulate); cj += n;
            Pair(a2, w0, w1, k16, k, s20, s21, cj, both, accumulate); cj += n;
            Pair(a3, w0, w1, k16, k, s30, s31, cj, both, accumulate); cj += n;
            Pair(a4, w0, w1, k16, k, s40, s41, cj, both, accumulate); cj += n;
            if (rows > 5) { Pair(a5, w0, w1, k16, k, s50, s51, cj, both, accumulate); cj += n; }
            if (rows > 6) { Pair(a6, w0, w1, k16, k, s60, s61, cj, both, accumulate); cj += n; }
            if (rows > 7) Pair(a7, w0, w1, k16, k, s70, s71, cj, both, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair(float* a, float* w0, float* w1, int k16, int k, Vector512<float> s0, Vector512<float> s1, float* c, bool both, bool accumulate)
    {
        Put(c, Tail(a, w0, k16, k, Vector512.Sum(s0)), accumulate);
        if (both) Put(c + 1, Tail(a, w1, k16, k, Vector512.Sum(s1)), accumulate);
    }

    /// <summary>Horizontal sums of one A row against four B rows, plus the k tail, written to the first <paramref name="count"/> columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(
        float* a, float* w0, float* w1, float* w2, float* w3, int k16, int k,
        Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3,
        float* c, int count, bool accumulate)
    {
        Put(c, Tail(a, w0, k16, k, Vector512.Sum(s0)), accumulate);
        if (count > 1) Put(c + 1, Tail(a, w1, k16, k, Vector512.Sum(s1)), accumulate);
        if (count > 2) Put(c + 2, Tail(a, w2, k16, k, Vector512.Sum(s2)), accumulate);
        if (count > 3) Put(c + 3, Tail(a, w3, k16, k, Vector512.Sum(s3)), accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail(float* a, float* w, int k16, int k, float sum)
    {
        for (int p = k16; p < k; p++) sum = MathF.FusedMultiplyAdd(a[p], w[p], sum);
        return sum;
    }

    /// <summary>Compile-time row count of a group, so each instantiation keeps only the accumulators it uses.</summary>
    private interface IRowCount
    {
        static abstract int Value { get; }
    }

    private struct R1 : IRowCount { public static int Value => 1; }

    private struct R2 : IRowCount { public static int Value => 2; }

    private struct R3 : IRowCount { public static int Value => 3; }

    private struct R4 : IRowCount { public static int Value => 4; }

    private struct R5 : IRowCount { public static int Value => 5; }

    private struct R6 : IRowCount { public static int Value => 6; }

    private struct R7 : IRowCount { public static int Value => 7; }

    private struct R8 : IRowCount { public static int Value => 8; }
}
