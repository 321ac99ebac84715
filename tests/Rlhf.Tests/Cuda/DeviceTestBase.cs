using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;

namespace Rlhf.Tests.Cuda;

/// <summary>One ILGPU CPU accelerator per fixture (a simulated GPU, group size ≤ 16) and buffers freed after each test.</summary>
public abstract class DeviceTestBase
{
    private readonly List<IDisposable> buffers = new();

    protected internal KernelDevice Device { get; private set; } = null!;

    [OneTimeSetUp]
    public void CreateDevice()
    {
        Device = KernelDevice.CreateCpu();
        Assert.That(Device.MaxGroupSize, Is.LessThanOrEqualTo(16));
        OnDevice();
    }

    protected virtual void OnDevice()
    {
    }

    [OneTimeTearDown]
    public void DisposeDevice() => Device.Dispose();

    [TearDown]
    public void FreeBuffers()
    {
        foreach (var b in buffers) b.Dispose();
        buffers.Clear();
    }

    protected internal ArrayView<T> Up<T>(T[] data) where T : unmanaged
    {
        var b = Device.Accelerator.Allocate1D(data);
        buffers.Add(b);
        return b.View;
    }

    protected internal T[] Down<T>(ArrayView<T> view) where T : unmanaged
    {
        Device.Accelerator.Synchronize();
        var r = new T[view.Length];
        if (r.Length > 0) view.CopyToCPU(r);
        return r;
    }

    /// <summary>As <see cref="AssertClose"/>, for fixtures without a device.</summary>
    internal static void AssertCloseTo(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double relTol, string what) => AssertClose(actual, expected, relTol, what);

    /// <summary>Each element within tol·(|e| + 0.1·max|e|) + 1e-6.</summary>
    protected static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double relTol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what + " length");
        double scale = 0;
        foreach (float e in expected) scale = Math.Max(scale, Math.Abs(e));
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - (double)expected[i]);
            double allowed = relTol * (Math.Abs(expected[i]) + 0.1 * scale) + 1e-6;
            if (!(err <= allowed)) Assert.Fail($"{what}[{i}]: got {actual[i]}, expected {expected[i]} (err {err:g3} > {allowed:g3})");
        }
    }

    /// <summary>A CPU model with random base and adapter weights (B non-zero) and its device twin with the same adapter attached.</summary>
    protected (Rlhf.Model.TransformerModel Cpu, Rlhf.Compute.DeviceTransformer Dev) AdaptedPair(Rlhf.Model.TransformerConfig config, string[] targets)
    {
        var cpu = new Rlhf.Model.TransformerModel(config);
        cpu.InitializeRandom(11, std: 0.3f);
        var lora = cpu.AttachAdapter(new Rlhf.Model.LoraConfig(2, 4f, targets), 4);
        Random(lora.Parameters.Length, 5, 0.3f).CopyTo(lora.Parameters, 0);
        var dev = new Rlhf.Compute.DeviceTransformer(Device, config);
        dev.UploadParameters(cpu.Parameters);
        dev.AttachAdapter(lora);
        return (cpu, dev);
    }

    protected static float[] Random(int n, ulong seed, float scale = 1f) => Rlhf.Tests.Model.ModelTestUtil.RandomFloats(n, seed, scale);
}
