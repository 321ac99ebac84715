namespace Rlhf.Kernels.Ppo;

/// <summary>Work for one fixed chunk of a kernel; a struct so the runner is specialised per kernel.</summary>
internal interface IChunkBody
{
    void Run(int chunk);
}

/// <summary>
/// Runs a kernel's fixed chunks on up to <see cref="KernelParallelism.MaxThreads"/> threads. Chunk boundaries are
/// chosen from the data size only, never from the thread count, and every chunk writes its own partial result, so
/// reductions combined in chunk order give the same bits for any thread count or schedule.
/// </summary>
internal static class ChunkRunner
{
    /// <summary>Most chunks a kernel uses; partial results for this many fit on the stack.</summary>
    public const int MaxChunks = 256;

    /// <summary>Elements per chunk for a flat span of <paramref name="length"/>: at least <paramref name="minChunk"/>, a multiple of 64, at most <see cref="MaxChunks"/> chunks.</summary>
    public static int ChunkLength(long length, int minChunk)
    {
        long perChunk = Math.Max(minChunk, (length + MaxChunks - 1) / MaxChunks);
        perChunk = (perChunk + 63) & ~63L;
        return (int)Math.Min(perChunk, int.MaxValue - 63);
    }

    public static int ChunkCount(long length, int chunkLength) => (int)((length + chunkLength - 1) / chunkLength);

    /// <summary>Runs <c>body.Run(c)</c> for every c in [0, chunks); no allocation when one thread is used.</summary>
    public static void Run<TBody>(int chunks, long work, TBody body) where TBody : struct, IChunkBody
    {
        int threads = Math.Min(chunks, KernelParallelism.ThreadsFor(work, 32 * 1024));
        if (threads <= 1)
        {
            for (int c = 0; c < chunks; c++) body.Run(c);
            return;
        }

        RunParallel(chunks, threads, body);
    }

    // A separate method: the lambda's closure would otherwise be allocated on every call, even single-threaded ones.
    private static void RunParallel<TBody>(int chunks, int threads, TBody body) where TBody : struct, IChunkBody
    {
        // Contiguous chunk ranges per worker keep each thread's memory sequential.
        Parallel.For(0, threads, w =>
        {
            int begin = (int)((long)chunks * w / threads);
            int end = (int)((long)chunks * (w + 1) / threads);
            for (int c = begin; c < end; c++) body.Run(c);
        });
    }
}
