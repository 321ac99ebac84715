namespace Rlhf.Kernels.Linear;

/// <summary>
/// The GotoBLAS/BLIS loop nest around <see cref="GemmMicroKernel"/>: C[m, n] (+)= op(A)[m, k]·op(B)[k, n], row-major.
/// </summary>
/// <remarks>
/// Loop order (outer to inner): jc over NC columns, pc over KC depth (pack B block), ic over MC rows (pack A block),
/// jr over 32-column panels, ir over 14-row panels. Block sizes for Zen4 (32 KiB L1d, 1 MiB L2 per core):
/// <list type="bullet">
/// <item>KC ≤ 384, split evenly (k = 1024 → 344 + 344 + 336): a B micro-panel (≤ 48 KiB) is reused by every A panel
/// of the ic block from L1/L2 while A panels stream from L2. The engine's k = 384 (x·Wᵀ, the LM head) is then one
/// block, so C is written once instead of written and re-read per block: for the LM head C is 206 MB, and a second
/// pass over it would cost ~8% at 37 GB/s.</item>
/// <item>MC = 336 (24 × 14): the packed A block (≤ 336 × 384 × 4 B = 516 KiB) stays in the 1 MiB L2 across all jr
/// panels.</item>
/// <item>NC = 2048: the packed B block (≤ 3 MiB) sits in L3 and is swept once per ic block.</item>
/// </list>
/// Parallelism splits C into one contiguous range of column panels per thread (rows when n is too narrow). Each
/// thread packs its own blocks into its own buffers, and the block sizes never depend on the thread count, so every
/// C element is the same FMA chain (same k order, same KC splits) whatever the number of threads.
/// </remarks>
internal static unsafe class GemmBlocked
{
    public const int MR = GemmMicroKernel.Rows;
    public const int NR = GemmMicroKernel.Columns;
    public const int MaxKC = 384;
    public const int MC = MR * 24;
    public const int NC = NR * 64;

    /// <summary>Multiply-adds below which one thread is used (the fork/join costs ~10 µs).</summary>
    private const long MinWorkPerThread = 1L << 21;

    public static void Multiply(float* a, float* b, float* c, int m, int n, int k, bool transposeA, bool transposeB, bool accumulate)
    {
        int threads = Gemm.OnThisThread ? 1 : KernelParallelism.ThreadsFor((long)m * n * k, MinWorkPerThread);
        int columnPanels = (n + NR - 1) / NR;
        int rowPanels = (m + MR - 1) / MR;
        bool splitColumns = columnPanels >= 2 * threads || columnPanels >= rowPanels;
        int units = splitColumns ? columnPanels : rowPanels;
        threads = Math.Min(threads, units);
        if (threads <= 1)
        {
            Range(a, b, c, m, n, k, transposeA, transposeB, accumulate, 0, m, 0, n);
            return;
        }

        MultiplyParallel(a, b, c, m, n, k, transposeA, transposeB, accumulate, splitColumns, units, threads);
    }

    // A separate method: the lambda's closure is allocated on entry to the method that holds it, so single-threaded
    // calls would pay for it too.
    private static void MultiplyParallel(float* a, float* b, float* c, int m, int n, int k, bool transposeA, bool transposeB, bool accumulate,
        bool splitColumns, int units, int threads)
    {
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int u0 = (int)((long)units * t / threads);
            int u1 = (int)((long)units * (t + 1) / threads);
            if (splitColumns)
            {
                Range((float*)pa, (float*)pb, (float*)pc, m, n, k, transposeA, transposeB, accumulate,
                    0, m, u0 * NR, Math.Min(n, u1 * NR));
            }
            else
            {
                Range((float*)pa, (float*)pb, (float*)pc, m, n, k, transposeA, transposeB, accumulate,
                    u0 * MR, Math.Min(m, u1 * MR), 0, n);
            }
        });
    }

    /// <summary>Computes rows [i0, i1) × columns [j0, j1) of C on the calling thread.</summary>
    private static void Range(
        float* a, float* b, float* c, int m, int n, int k, bool transposeA, bool transposeB, bool accumulate,
        int i0, int i1, int j0, int j1)
    {
        int maxRows = RoundUp(Math.Min(MC, i1 - i0), MR);
        int maxCols = RoundUp(Math.Min(NC, j1 - j0), NR);
        int kc = DepthBlock(k);
        GemmWorkspace workspace = GemmBuffers.Rent();
        try
        {
            // + 16: room for the 2-float spill of the last 16-wide store into a 14-wide panel (GemmTranspose.Block16).
            float* packedA = workspace.A(maxRows * kc + 16);
            float* packedB = workspace.B(maxCols * kc);
            Blocks(a, b, c, m, n, k, transposeA, transposeB, accumulate, i0, i1, j0, j1, kc, packedA, packedB);
        }
        finally
        {
            GemmBuffers.Return(workspace);
        }
    }

    private static void Blocks(
        float* a, float* b, float* c, int m, int n, int k, bool transposeA, bool transposeB, bool accumulate,
        int i0, int i1, int j0, int j1, int kc, float* packedA, float* packedB)
    {
        float* edge = stackalloc float[MR * NR];

        for (int jc = j0; jc < j1; jc += NC)
        {
            int cols = Math.Min(NC, j1 - jc);
            for (int p0 = 0; p0 < k; p0 += kc)
            {
                int depth = Math.Min(kc, k - p0);
                bool add = accumulate || p0 > 0;
                GemmPacking.PackB(b, transposeB, n, k, p0, depth, jc, cols, packedB);
                for (int ic = i0; ic < i1; ic += MC)
                {
                    int rows = Math.Min(MC, i1 - ic);
                    GemmPacking.PackA(a, transposeA, m, k, ic, rows, p0, depth, packedA);
                    for (int jr = 0; jr < cols; jr += NR)
                    {
                        int w = Math.Min(NR, cols - jr);
                        float* bPanel = packedB + (nint)jr * depth;
                        for (int ir = 0; ir < rows; ir += MR)
                        {
                            int h = Math.Min(MR, rows - ir);
                            float* aPanel = packedA + (nint)ir * depth;
                            float* cTile = c + (nint)(ic + ir) * n + jc + jr;
                            if (h == MR && w == NR)
                            {
                                GemmMicroKernel.Tile(depth, aPanel, bPanel, cTile, n, add);
                            }
                            else if (w == NR)
                            {
                                GemmMicroKernel.ShortTile(h, depth, aPanel, bPanel, cTile, n, add);
                            }
                            else
                            {
                                GemmMicroKernel.Tile(depth, aPanel, bPanel, edge, NR, add: false);
                                MergeEdge(edge, cTile, n, h, w, add);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void MergeEdge(float* tile, float* c, nint ldc, int h, int w, bool add)
    {
        for (int i = 0; i < h; i++, c += ldc, tile += NR)
        {
            if (add)
            {
                for (int j = 0; j < w; j++) c[j] += tile[j];
            }
            else
            {
                for (int j = 0; j < w; j++) c[j] = tile[j];
            }
        }
    }

    /// <summary>The depth of one k block: a function of k alone, so the summation order never depends on threads.</summary>
    internal static int DepthBlock(int k)
    {
        int blocks = (k + MaxKC - 1) / MaxKC;
        return Math.Min(MaxKC, RoundUp((k + blocks - 1) / blocks, 8));
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
