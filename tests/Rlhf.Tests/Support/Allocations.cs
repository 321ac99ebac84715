namespace Rlhf.Tests.Support;

/// <summary>Steady-state heap allocation of a call on the current thread.</summary>
public static class Allocations
{
    /// <summary>
    /// Bytes <paramref name="run"/> allocates per call once warm: three warm-up calls (tiered JIT and on-stack
    /// replacement settle), then the least of five measured calls, so a one-off (a late tier-up, a lazily built
    /// delegate) is not counted while anything that allocates on every call (a closure, a buffer) still is.
    /// </summary>
    public static long PerCall(Action run)
    {
        for (int w = 0; w < 3; w++) run();
        long least = long.MaxValue;
        for (int r = 0; r < 5; r++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return least;
    }
}
