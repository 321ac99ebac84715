namespace Rlhf.Kernels;

/// <summary>
/// How many threads the CPU kernels use. Benchmarks pin it to 1 or 2 to compare against peers
/// measured with the same thread count; the default is every core.
/// </summary>
public static class KernelParallelism
{
    private static int maxThreads = Environment.ProcessorCount;

    public static int MaxThreads
    {
        get => maxThreads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            maxThreads = value;
        }
    }

    /// <summary>Threads worth using for <paramref name="work"/> units when one thread should get at least <paramref name="minWorkPerThread"/>.</summary>
    public static int ThreadsFor(long work, long minWorkPerThread)
    {
        long useful = Math.Max(1, work / Math.Max(1, minWorkPerThread));
        return (int)Math.Min(maxThreads, useful);
    }
}
