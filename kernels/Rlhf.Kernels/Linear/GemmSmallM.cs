using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// GEMV-like path for few rows of C (decode: m = 1..8): no packing of B, which would cost as much as the product.
/// </summary>
/// <remarks>
/// With m this small the product is bound by reading B once, so B is streamed exactly once and each slice of it
/// serves every row of A while still in L1. Rows go in groups of up to 4 (generic over the group size, so the JIT
/// drops the unused accumulators). op(B) = B [k, n]: each C element is one FMA chain over p in order (vectorized
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
        int threads = Math.Min(units, KernelParallelism.ThreadsFor((long)m * n * k, MinWorkPerThread));
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
        for (int i = 0; i < m; i += 4)
        {
            float* a = aRows + (nint)i * k;
            float* ci = c + (nint)i * n;
            switch (Math.Min(4, m - i))
            {
                case 1: Group<R1>(a, b, ci, n, k, transposeB, accumulate, j0, j1); break;
                case 2: Group<R2>(a, b, ci, n, k, transposeB, accumulate, j0, j1); break;
                case 3: Group<R3>(a, b, ci, n, k, transposeB, accumulate, j0, j1); break;
                default: Group<R4>(a, b, ci, n, k, transposeB, accumulate, j0, j1); break;
            }
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
}
