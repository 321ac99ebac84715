using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Owns an ILGPU <see cref="Context"/> and one <see cref="Accelerator"/>: CUDA on an NVIDIA machine,
/// ILGPU's CPU accelerator in tests (about 80× slower than the span kernels, used only to prove the
/// device kernels match the CPU path at small shapes).
/// </summary>
public sealed class KernelDevice : IDisposable
{
    private KernelDevice(Context context, Accelerator accelerator)
    {
        Context = context;
        Accelerator = accelerator;
    }

    public Context Context { get; }

    public Accelerator Accelerator { get; }

    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <summary>Largest group a kernel may launch on this accelerator (16 on ILGPU's CPU accelerator).</summary>
    public int MaxGroupSize => Accelerator.MaxNumThreadsPerGroup;

    /// <summary>ILGPU's CPU accelerator (a simulated GPU); for tests and machines without CUDA.</summary>
    public static KernelDevice CreateCpu()
    {
        var context = Context.Create(builder => builder.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O1));
        return new KernelDevice(context, context.CreateCPUAccelerator(0));
    }

    /// <summary>The first CUDA device; throws a clear error when no driver or device is present.</summary>
    public static KernelDevice CreateCuda()
    {
        var context = Context.Create(builder => builder.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var devices = context.GetCudaDevices();
        if (devices.Count == 0)
        {
            context.Dispose();
            throw new InvalidOperationException(
                "CUDA was requested but no CUDA device was found (is the NVIDIA driver installed and libcuda.so.1 loadable?).");
        }

        return new KernelDevice(context, devices[0].CreateAccelerator(context));
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}
