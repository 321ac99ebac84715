using ILGPU;
using ILGPU.Runtime;

namespace Rlhf.DeviceBench;

/// <summary>Seeded random host arrays and their device copies.</summary>
internal static class DeviceArrays
{
    public static float[] Random(int n, int seed, float scale = 1f, float offset = 0f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = offset + scale * (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>Response masks: row b is valid for its first max(1, steps − b·steps/(2·batch)) positions.</summary>
    public static float[] Mask(int batch, int steps)
    {
        var m = new float[batch * steps];
        for (int b = 0; b < batch; b++)
        {
            int valid = Math.Max(1, steps - b * steps / (2 * batch));
            for (int t = 0; t < valid; t++) m[b * steps + t] = 1f;
        }

        return m;
    }

    public static MemoryBuffer1D<float, Stride1D.Dense> ToDevice(this Accelerator accelerator, float[] host)
    {
        var buffer = accelerator.Allocate1D<float>(host.Length);
        buffer.CopyFromCPU(host);
        return buffer;
    }

    public static MemoryBuffer1D<int, Stride1D.Dense> ToDevice(this Accelerator accelerator, int[] host)
    {
        var buffer = accelerator.Allocate1D<int>(host.Length);
        buffer.CopyFromCPU(host);
        return buffer;
    }
}
