using ILGPU;
using ILGPU.Runtime;

// ILGPU's CPU accelerator emits its kernels into a dynamic assembly that must see the internal argument structs.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("ILGPURuntime")]

namespace Rlhf.Kernels.Device;

/// <summary>
/// Deterministic reductions for the PPO and optimizer device kernels: a fixed grid of groups (chosen from the
/// element count only), grid-stride accumulation per thread, a shared-memory tree per group, one partial per group
/// and term written to a small buffer, and the partials summed on the host in double, in group order.
/// No atomics, so the same inputs give the same bits on every run.
/// </summary>
internal sealed class PpoDeviceReduction : IDisposable
{
    /// <summary>Largest group the kernels' static shared memory is sized for (a power of two).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Most groups a reduction launches; more elements are covered by the grid-stride loop.</summary>
    public const int MaxGroups = 256;

    /// <summary>Most terms one reduction kernel produces per group.</summary>
    public const int MaxTerms = 5;

    private readonly Accelerator accelerator;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> partials;
    private readonly float[] host = new float[MaxGroups * MaxTerms];

    public PpoDeviceReduction(KernelDevice device, int groupSize)
    {
        accelerator = device.Accelerator;
        int limit = Math.Min(MaxGroupSize, groupSize > 0 ? groupSize : device.MaxGroupSize);
        GroupSize = 1;
        while (GroupSize * 2 <= limit) GroupSize *= 2;
        partials = accelerator.Allocate1D<float>(MaxGroups * MaxTerms);
    }

    /// <summary>Threads per group: a power of two ≤ min(256, the device's limit).</summary>
    public int GroupSize { get; }

    public ArrayView<float> Partials => partials.View;

    /// <summary>The launch for <paramref name="n"/> elements: ⌈n / GroupSize⌉ groups, at most <see cref="MaxGroups"/>.</summary>
    public KernelConfig Config(long n) => new((int)Math.Clamp((n + GroupSize - 1) / GroupSize, 1, MaxGroups), GroupSize);

    /// <summary>Waits for the kernel and sums term <paramref name="term"/> of <paramref name="terms"/> over the groups of <paramref name="config"/>.</summary>
    public void Sum(KernelConfig config, int terms, Span<double> sums)
    {
        int groups = config.GridDim.X;
        accelerator.Synchronize();
        partials.View.SubView(0, groups * terms).CopyToCPU(ref host[0], groups * terms);
        sums.Clear();
        for (int g = 0; g < groups; g++)
        {
            for (int k = 0; k < terms; k++) sums[k] += host[g * terms + k];
        }
    }

    /// <summary>In-kernel: tree-sums rows k &lt; <paramref name="terms"/> of shared[k·MaxGroupSize + thread]; thread 0 then writes them.</summary>
    public static void GroupSumAndStore(ArrayView<float> shared, int terms, ArrayView<float> partials)
    {
        int tid = Group.IdxX;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (tid < s)
            {
                for (int k = 0; k < terms; k++) shared[k * MaxGroupSize + tid] += shared[k * MaxGroupSize + tid + s];
            }

            Group.Barrier();
        }

        if (tid == 0)
        {
            for (int k = 0; k < terms; k++) partials[Grid.IdxX * terms + k] = shared[k * MaxGroupSize];
        }
    }

    /// <summary>Copies a device view to a new host array: only on error paths, to name a bad element.</summary>
    public float[] ToHost(ArrayView<float> view)
    {
        accelerator.Synchronize();
        var a = new float[view.Length];
        if (a.Length > 0) view.CopyToCPU(ref a[0], a.Length);
        return a;
    }

    public void Dispose() => partials.Dispose();
}
