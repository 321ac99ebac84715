using ILGPU.Runtime;
using Rlhf.Kernels.Device;

namespace Rlhf.DeviceBench;

/// <summary>The bandwidth anchor: a device-to-device copy of a logits-sized buffer.</summary>
internal static class CopySuite
{
    public static void Run(KernelDevice device, BenchScale scale, DeviceReport report)
    {
        long n = (long)scale.Rows * scale.Vocab;
        using var source = device.Accelerator.Allocate1D<float>(n);
        using var target = device.Accelerator.Allocate1D<float>(n);
        source.MemSetToZero();
        double ms = Stopwatches.MedianMilliseconds(device.Accelerator, () => source.View.CopyTo(target.View));
        report.AddTiming($"device copy [{scale.Rows}x{scale.Vocab}]", ms, 2 * n * sizeof(float), "read + write");
    }
}
