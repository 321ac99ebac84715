namespace Rlhf.Kernels.Vocabulary;

/// <summary>Work over a contiguous range of rows; implemented by small structs that carry raw pointers.</summary>
internal interface IRowBody
{
    void Run(int startRow, int endRow);
}

/// <summary>
/// Splits rows into <see cref="KernelParallelism.MaxThreads"/> fixed contiguous chunks. Rows are independent,
/// so results do not depend on the thread count; one thread runs inline and allocates nothing.
/// </summary>
internal static class RowParallel
{
    // Below ~256K elements per thread the fork/join cost (~10 µs) outweighs the gain.
    private const long MinElementsPerThread = 1 << 18;

    public static void For<TBody>(int rows, long elementsPerRow, TBody body)
        where TBody : struct, IRowBody
    {
        int threads = Math.Min(rows, KernelParallelism.ThreadsFor(rows * elementsPerRow, MinElementsPerThread));
        if (threads <= 1)
        {
            body.Run(0, rows);
            return;
        }

        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads },
            chunk => body.Run((int)((long)rows * chunk / threads), (int)((long)rows * (chunk + 1) / threads)));
    }

    /// <summary>Records <paramref name="row"/> as bad if it is the lowest seen so far (lock-free, any thread).</summary>
    public static unsafe void RecordBadRow(int* firstBadRow, int row)
    {
        int seen = Volatile.Read(ref *firstBadRow);
        while (row < seen)
        {
            int previous = Interlocked.CompareExchange(ref *firstBadRow, row, seen);
            if (previous == seen) return;
            seen = previous;
        }
    }
}
