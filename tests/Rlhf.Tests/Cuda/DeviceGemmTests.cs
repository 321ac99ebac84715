using Rlhf.Kernels;
using Rlhf.Kernels.Device;

namespace Rlhf.Tests.Cuda;

[NonParallelizable]
public class DeviceGemmTests : DeviceTestBase
{
    private IDeviceGemm gemm = null!;

    protected override void OnDevice() => gemm = DeviceGemm.Create(Device);

    [Test]
    public void CreatePicksTheIlgpuKernelOffCuda() => Assert.That(gemm, Is.InstanceOf<IlgpuGemm>());

    [TestCase(false, false, false)]
    [TestCase(true, false, false)]
    [TestCase(false, true, false)]
    [TestCase(true, true, true)]
    [TestCase(false, true, true)]
    public void MatchesHostGemm(bool ta, bool tb, bool accumulate)
    {
        const int m = 5, n = 7, k = 9;
        var a = Random(m * k, 1);
        var b = Random(k * n, 2);
        var c0 = Random(m * n, 3);
        var expected = (float[])c0.Clone();
        Gemm.Multiply(a, b, expected, m, n, k, ta, tb, accumulate);
        var c = Up(c0);
        gemm.Multiply(Up(a), Up(b), c, m, n, k, ta, tb, accumulate);
        AssertClose(Down(c), expected, 1e-5, "c");
    }

    [Test]
    public void RejectsWrongLengthsNamingTheArgument()
    {
        var ex = Assert.Throws<ArgumentException>(() => gemm.Multiply(Up(new float[5]), Up(new float[6]), Up(new float[6]), 2, 3, 2));
        Assert.That(ex!.ParamName, Is.EqualTo("a"));
    }
}
