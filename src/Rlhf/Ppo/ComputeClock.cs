using System.Diagnostics;

namespace Rlhf.Ppo;

/// <summary>
/// Sums the time spent inside engine and kernel calls (forward, backward, logits, token statistics, losses, GAE,
/// optimizer, sampling, the reward function), so an iteration can report what is left: orchestration (batching,
/// copies, tokenising, bookkeeping). A scope costs two timestamp reads and allocates nothing.
/// </summary>
internal sealed class ComputeClock
{
    private long ticks;

    public double Seconds => ticks / (double)Stopwatch.Frequency;

    public void Reset() => ticks = 0;

    /// <summary><c>using (clock.Measure()) { ... }</c> adds the block's wall time.</summary>
    public Scope Measure() => new(this);

    public readonly ref struct Scope
    {
        private readonly ComputeClock clock;
        private readonly long start;

        internal Scope(ComputeClock clock)
        {
            this.clock = clock;
            start = Stopwatch.GetTimestamp();
        }

        public void Dispose() => clock.ticks += Stopwatch.GetTimestamp() - start;
    }
}
