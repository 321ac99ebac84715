using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// GEMV-like path for few rows of C (decode: m = 1..8): no packing of B, which would cost as much as the product.
/// </summary>
/// <remarks>
/// With m this small the product is bound by reading B once, so B is streamed exactly once, in storage order, and
/// each slice of it serves every row of A while still in L1 (generic over the row count, so the JIT drops unused
/// rows). op(B) = B [k, n]: 8 rows of B at a time against partial sums kept in L1; each C element is one FMA chain
/// over p in order (vectorized across 16 columns). op(B) = Bᵀ with B stored [n, k]: each C element is a dot
/// product of two contiguous rows (16 partial sums in k order, a fixed-order horizontal sum, then the k tail), up
/// to 4 rows × 4 columns or 8 rows × 2 columns at once, with the next B rows prefetched. Either way an element's
/// value does not depend on how columns are grouped or split between threads.
/// </remarks>
internal static unsafe class GemmSmallM
{
    public const int MaxRows = 8;

    /// <summary>
    /// Multiply-adds below which one thread is used. Low because these products are bound by reading B: at m = 1,
    /// 2^18 is a 1 MiB weight matrix, which one core streams in ~30 µs while a second core's bandwidth pays for the
    /// ~10 µs fork/join (a batch-1 decode's per-layer projections are 0.6–2.4 MB).
    /// </summary>
    private const long MinWorkPerThread = 1L << 18;

    /// <summary>Column granularity of the thread split (keeps each thread's slice of C 64-byte aligned relative to the rows).</summary>
    private const int ColumnUnit = 64;

    /// <summary>Columns of one streamed block for B [k, n]: the 8 partial-sum rows (16 KiB) stay in L1.</summary>
    private const int StreamWidth = 512;

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

        MultiplyParallel(aRows, b, c, m, n, k, transposeB, accumulate, units, threads);
    }

    // A separate method: the lambda's closure is allocated on entry to the method that holds it, so single-threaded
    // calls would pay for it too.
    private static void MultiplyParallel(float* aRows, float* b, float* c, int m, int n, int k, bool transposeB, bool accumulate, int units, int threads)
    {
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
        if (!transposeB)
        {
            GemmWorkspace workspace = GemmBuffers.Rent();
            try
            {
                float* acc = workspace.B(MaxRows * StreamWidth);
                switch (m)
                {
                    case 1: Streamed<R1>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    case 2: Streamed<R2>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    case 3: Streamed<R3>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    case 4: Streamed<R4>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    case 5: Streamed<R5>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    case 6: Streamed<R6>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    case 7: Streamed<R7>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                    default: Streamed<R8>(aRows, b, c, n, k, accumulate, j0, j1, acc); break;
                }
            }
            finally
            {
                GemmBuffers.Return(workspace);
            }

            return;
        }

        // 5..8 rows in one pass over B: two groups of 4 would stream B (the LM head: 77 MB) twice.
        switch (m)
        {
            case 1: Dots<R1>(aRows, b, c, n, k, accumulate, j0, j1); break;
            case 2: Dots<R2>(aRows, b, c, n, k, accumulate, j0, j1); break;
            case 3: Dots<R3>(aRows, b, c, n, k, accumulate, j0, j1); break;
            case 4: Dots<R4>(aRows, b, c, n, k, accumulate, j0, j1); break;
            case 5: WideDots<R5>(aRows, b, c, n, k, accumulate, j0, j1); break;
            case 6: WideDots<R6>(aRows, b, c, n, k, accumulate, j0, j1); break;
            case 7: WideDots<R7>(aRows, b, c, n, k, accumulate, j0, j1); break;
            default: WideDots<R8>(aRows, b, c, n, k, accumulate, j0, j1); break;
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

    /// <summary>
    /// C[r, j] (+)= Σ_p A[r, p]·B[p, j] for B stored [k, n], r &lt; TR.Value ≤ 8, j in [j0, j1). B is read as it is
    /// stored: 8 rows at a time, each a contiguous run of up to <see cref="StreamWidth"/> columns, while the partial
    /// sums of every A row wait in <paramref name="acc"/> [8][StreamWidth] (L1). A register-tiled column chunk would
    /// instead touch one cache line in each of k rows n floats apart, which the hardware prefetcher does not follow.
    /// Each C element is still one FMA chain over p in order starting from 0 (kept in memory between row blocks).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Streamed<TR>(float* a, float* b, float* c, int n, int k, bool accumulate, int j0, int j1, float* acc)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        for (int jb = j0; jb < j1; jb += StreamWidth)
        {
            int w = Math.Min(StreamWidth, j1 - jb);
            for (int r = 0; r < rows; r++) new Span<float>(acc + r * StreamWidth, w).Clear();
            int p = 0;
            for (; p + 8 <= k; p += 8) RowBlock8<TR>(a + p, k, b + (nint)p * n + jb, n, acc, w);
            for (; p < k; p++) RowBlock1<TR>(a + p, k, b + (nint)p * n + jb, acc, w);
            for (int r = 0; r < rows; r++)
            {
                float* cr = c + (nint)r * n + jb;
                float* ar = acc + r * StreamWidth;
                int j = 0;
                for (; j + 16 <= w; j += 16) Put(cr + j, Vector512.Load(ar + j), accumulate);
                for (; j < w; j++) Put(cr + j, ar[j], accumulate);
            }
        }
    }

    /// <summary>acc[r, j] = fma chain over 8 rows of B at <paramref name="b"/> (stride n), A columns at a + r·k + q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowBlock8<TR>(float* a, int k, float* b, int n, float* acc, int w)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        nint ld = n;
        int j = 0;
        for (; j + 32 <= w; j += 32)
        {
            // Two column chunks per row: two independent FMA chains (one chain alone waits on FMA latency).
            float* bj = b + j;
            Vector512<float> b0 = Vector512.Load(bj), b1 = Vector512.Load(bj + ld), b2 = Vector512.Load(bj + 2 * ld), b3 = Vector512.Load(bj + 3 * ld);
            Vector512<float> b4 = Vector512.Load(bj + 4 * ld), b5 = Vector512.Load(bj + 5 * ld), b6 = Vector512.Load(bj + 6 * ld), b7 = Vector512.Load(bj + 7 * ld);
            Vector512<float> e0 = Vector512.Load(bj + 16), e1 = Vector512.Load(bj + ld + 16), e2 = Vector512.Load(bj + 2 * ld + 16), e3 = Vector512.Load(bj + 3 * ld + 16);
            Vector512<float> e4 = Vector512.Load(bj + 4 * ld + 16), e5 = Vector512.Load(bj + 5 * ld + 16), e6 = Vector512.Load(bj + 6 * ld + 16), e7 = Vector512.Load(bj + 7 * ld + 16);
            for (int r = 0; r < rows; r++)
            {
                float* ar = a + (nint)r * k;
                float* pr = acc + r * StreamWidth + j;
                Vector512<float> v = Vector512.Load(pr), u = Vector512.Load(pr + 16), x;
                x = Vector512.Create(ar[0]); v = Vector512.FusedMultiplyAdd(x, b0, v); u = Vector512.FusedMultiplyAdd(x, e0, u);
                x = Vector512.Create(ar[1]); v = Vector512.FusedMultiplyAdd(x, b1, v); u = Vector512.FusedMultiplyAdd(x, e1, u);
                x = Vector512.Create(ar[2]); v = Vector512.FusedMultiplyAdd(x, b2, v); u = Vector512.FusedMultiplyAdd(x, e2, u);
                x = Vector512.Create(ar[3]); v = Vector512.FusedMultiplyAdd(x, b3, v); u = Vector512.FusedMultiplyAdd(x, e3, u);
                x = Vector512.Create(ar[4]); v = Vector512.FusedMultiplyAdd(x, b4, v); u = Vector512.FusedMultiplyAdd(x, e4, u);
                x = Vector512.Create(ar[5]); v = Vector512.FusedMultiplyAdd(x, b5, v); u = Vector512.FusedMultiplyAdd(x, e5, u);
                x = Vector512.Create(ar[6]); v = Vector512.FusedMultiplyAdd(x, b6, v); u = Vector512.FusedMultiplyAdd(x, e6, u);
                x = Vector512.Create(ar[7]); v = Vector512.FusedMultiplyAdd(x, b7, v); u = Vector512.FusedMultiplyAdd(x, e7, u);
                v.Store(pr);
                u.Store(pr + 16);
            }
        }

        for (; j + 16 <= w; j += 16)
        {
            float* bj = b + j;
            Vector512<float> b0 = Vector512.Load(bj), b1 = Vector512.Load(bj + ld), b2 = Vector512.Load(bj + 2 * ld), b3 = Vector512.Load(bj + 3 * ld);
            Vector512<float> b4 = Vector512.Load(bj + 4 * ld), b5 = Vector512.Load(bj + 5 * ld), b6 = Vector512.Load(bj + 6 * ld), b7 = Vector512.Load(bj + 7 * ld);
            for (int r = 0; r < rows; r++)
            {
                float* ar = a + (nint)r * k;
                float* pr = acc + r * StreamWidth + j;
                Vector512<float> v = Vector512.Load(pr);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[0]), b0, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[1]), b1, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[2]), b2, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[3]), b3, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[4]), b4, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[5]), b5, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[6]), b6, v);
                v = Vector512.FusedMultiplyAdd(Vector512.Create(ar[7]), b7, v);
                v.Store(pr);
            }
        }

        for (; j < w; j++)
        {
            for (int r = 0; r < rows; r++)
            {
                float* ar = a + (nint)r * k;
                float v = acc[r * StreamWidth + j];
                for (int q = 0; q < 8; q++) v = MathF.FusedMultiplyAdd(ar[q], b[q * ld + j], v);
                acc[r * StreamWidth + j] = v;
            }
        }
    }

    /// <summary>One row of B (the k tail of <see cref="RowBlock8{TR}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowBlock1<TR>(float* a, int k, float* b, float* acc, int w)
        where TR : struct, IRowCount
    {
        int rows = TR.Value;
        for (int r = 0; r < rows; r++)
        {
            Vector512<float> x = Vector512.Create(a[(nint)r * k]);
            float* pr = acc + r * StreamWidth;
            int j = 0;
            for (; j + 16 <= w; j += 16) Vector512.FusedMultiplyAdd(x, Vector512.Load(b + j), Vector512.Load(pr + j)).Store(pr + j);
            for (; j < w; j++) pr[j] = MathF.FusedMultiplyAdd(a[(nint)r * k], b[j], pr[j]);
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
            // The next four B rows, fetched while these are multiplied and reduced.
            float* next = w0 + 4 * (nint)k;
            bool prefetch = j + 7 < j1;
            for (int p = 0; p < k16; p += 16)
            {
                if (prefetch)
                {
                    Sse.Prefetch0(next + p);
                    Sse.Prefetch0(next + k + p);
                    Sse.Prefetch0(next + 2 * k + p);
                    Sse.Prefetch0(next + 3 * k + p);
                }

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
            // The next pair of B rows, fetched while this pair is multiplied and reduced.
            float* next = w0 + 2 * (nint)k;
            bool prefetch = j + 3 < j1;
            for (int p = 0; p < k16; p += 16)
            {
                if (prefetch)
                {
                    Sse.Prefetch0(next + p);
                    Sse.Prefetch0(next + k + p);
                }

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
