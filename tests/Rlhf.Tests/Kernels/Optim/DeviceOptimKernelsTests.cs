using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Optim;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Optim;

[NonParallelizable]
public class DeviceOptimKernelsTests
{
    private KernelDevice device = null!;
    private DeviceOptimKernels kernels = null!;
    private readonly List<IDisposable> buffers = new();

    [OneTimeSetUp]
    public void SetUp()
    {
        device = KernelDevice.CreateCpu();
        kernels = new DeviceOptimKernels(device);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        kernels.Dispose();
        device.Dispose();
    }

    [TearDown]
    public void FreeBuffers()
    {
        foreach (var b in buffers) b.Dispose();
        buffers.Clear();
    }

    private ArrayView<float> Up(float[] data)
    {
        var b = device.Accelerator.Allocate1D(data);
        buffers.Add(b);
        return b.View;
    }

    private static float[] Down(ArrayView<float> view)
    {
        var a = new float[view.Length];
        view.CopyToCPU(ref a[0], a.Length);
        return a;
    }

    [Test]
    public void AdamWMatchesCpu()
    {
        var rng = new Random(1);
        int n = 333;
        var p = Normal(rng, n);
        var m = new float[n];
        var v = new float[n];
        var dp = Up(p);
        var dm = Up(m);
        var dv = Up(v);
        for (int step = 1; step <= 3; step++)
        {
            var g = Normal(rng, n);
            AdamW.Step(p, g, m, v, step, 1e-2, 0.9, 0.999, 1e-8, 0.1);
            kernels.AdamWStep(dp, Up(g), dm, dv, step, 1e-2, 0.9, 0.999, 1e-8, 0.1);
        }

        AssertClose(ToDouble(p), Down(dp), 1e-6, 1e-6, "params");
        // The CPU path fuses multiply-adds, the device kernel may not: compare at float rounding of O(1) terms.
        AssertClose(ToDouble(m), Down(dm), 1e-6, 1e-7, "exp_avg");
        AssertClose(ToDouble(v), Down(dv), 1e-6, 1e-9, "exp_avg_sq");
    }

    [TestCase(1, 0.5f)]
    [TestCase(1000, 2f)]
    [TestCase(1000, 1e4f)]
    public void ClipMatchesCpu(int n, float maxNorm)
    {
        var g = Normal(new Random(n), n);
        var d = Up(g);
        float cpu = GradientClipping.ClipByGlobalNorm(g, maxNorm);
        float dev = kernels.ClipByGlobalNorm(d, maxNorm);
        AssertClose(cpu, dev, 1e-6, 0, "norm");
        AssertClose(ToDouble(g), Down(d), 1e-6, 1e-9, "clipped");
    }

    [Test]
    public void HugeFiniteGradientsAreClippedNotZeroed()
    {
        var g = new float[3000];
        g[5] = 2e19f;
        g[2999] = 1f;
        var d = Up(g);
        float norm = kernels.ClipByGlobalNorm(d, 1f);
        Assert.That(norm, Is.EqualTo(2e19f).Within(1e13f));
        var clipped = Down(d);
        Assert.That(clipped[5], Is.EqualTo(1f).Within(1e-6f));
        Assert.That(clipped[2999], Is.EqualTo(5e-20f).Within(1e-25f));
        var infinite = new float[3000];
        infinite[7] = float.PositiveInfinity;
        Assert.That(kernels.GlobalNorm(Up(infinite)), Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void RejectsBadArguments()
    {
        var x = Up(new float[8]);
        var ex = Assert.Throws<ArgumentException>(() => kernels.AdamWStep(x, Up(new float[7]), x, x, 1, 1e-3));
        Assert.That(ex!.ParamName, Is.EqualTo("gradients"));
        var bad = new float[8];
        bad[3] = float.NaN;
        var ex2 = Assert.Throws<ArgumentException>(() => kernels.ClipByGlobalNorm(Up(bad), 1f));
        Assert.That(ex2!.Message, Does.Contain("gradients[3]"));
        Assert.Throws<ArgumentOutOfRangeException>(() => kernels.ClipByGlobalNorm(x, -1f));
    }
}
