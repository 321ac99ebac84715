using System.Runtime.CompilerServices;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>Work over a contiguous range of rows; implemented by small structs that carry raw pointers.</summary>
internal interface IRowBody
{
    void Run(int startRow, int endRow);
}

/// <summary>
/// Runs rows on up to <see cref="KernelParallelism.MaxThreads"/> threads in chunks of contiguous rows, about
/// <see cref="ChunksPerThread"/> per thread, which the threads take in turn from a shared counter. Rows are independent,
/// so results do not depend on the thread count or on which thread ran a chunk; one thread runs inline and allocates
/// nothing.
/// </summary>
/// <remarks>
/// Handing chunks out instead of giving each thread a fixed half keeps both cores busy to the end when one of them is
/// slower for a while (another tenant on a shared host): an A/B in one process on the 2-core box (2 threads, medians of
/// 15–25 alternating rounds) took the full-vocabulary KL from 9.55 to 8.29 ms (512 × 50257) and 25.5–25.7 to 24.2–24.5 ms
/// (2048 × 32000), and the token statistics from 3.64–4.56 to 3.25–4.18 ms and 9.98–11.18 to 9.35–9.63 ms.
/// </remarks>
internal static class RowParallel
{
    // Below ~256K elements per thread the fork/join cost (~10 µs) outweighs the gain.
    private const long MinElementsPerThread = 1 << 18;

    private const int ChunksPerThread = 16;

    public static void For<TBody>(int rows, long elementsPerRow, TBody body)
        where TBody : struct, IRowBody
    {
        int threads = Math.Min(rows, KernelParallelism.ThreadsFor(rows * elementsPerRow, MinElementsPerThread));
        if (threads <= 1)
        {
            body.Run(0, rows);
            return;
        }

        RunParallel(rows, threads, body);
    }

    // A separate method: a lambda's closure is allocated on entry to the method that holds it, so in For it cost
    // every single-threaded call an allocation too.
    private static void RunParallel<TBody>(int rows, int threads, TBody body)
        where TBody : struct, IRowBody
    {
        int rowsPerChunk = Math.Max(1, rows / (threads * ChunksPerThread));
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        var taken = new StrongBox<int>(-1);
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
        {
            int chunk;
            while ((chunk = Interlocked.Increment(ref taken.Value)) < chunks)
                body.Run(chunk * rowsPerChunk, Math.Min(rows, (chunk + 1) * rowsPerChunk));
        });
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
