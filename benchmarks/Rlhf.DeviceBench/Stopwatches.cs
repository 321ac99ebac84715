using System.Diagnostics;
using ILGPU.Runtime;

namespace Rlhf.DeviceBench;

/// <summary>Median wall time of a device operation, synchronised after each launch.</summary>
internal static class Stopwatches
{
    public static double MedianMilliseconds(Accelerator accelerator, Action launch, int warmups = 3, double minSeconds = 0.3, int maxRuns = 200)
    {
        for (int i = 0; i < warmups; i++)
        {
            launch();
            accelerator.Synchronize();
        }

        var samples = new List<double>();
        var total = Stopwatch.StartNew();
        while (samples.Count < 5 || (total.Elapsed.TotalSeconds < minSeconds && samples.Count < maxRuns))
        {
            long start = Stopwatch.GetTimestamp();
            launch();
            accelerator.Synchronize();
            samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        samples.Sort();
        return samples[samples.Count / 2];
    }
}
