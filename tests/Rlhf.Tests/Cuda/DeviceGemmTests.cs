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

/// <summary>
/// The cuBLAS argument mapping, checked without a GPU: a scalar column-major SGEMM (the BLAS definition) run with
/// the arguments <see cref="CublasGemm"/> passes must give the row-major host product.
/// </summary>
public class CublasMappingTests
{
    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void ColumnMajorArgumentsReproduceTheRowMajorProduct(bool ta, bool tb)
    {
        const int m = 4, n = 6, k = 3;
        var a = Rlhf.Tests.Model.ModelTestUtil.RandomFloats(m * k, 81);
        var b = Rlhf.Tests.Model.ModelTestUtil.RandomFloats(k * n, 82);
        var expected = new float[m * n];
        Rlhf.Kernels.Gemm.Multiply(a, b, expected, m, n, k, ta, tb);
        var g = CublasGemm.ColumnMajor(m, n, k, ta, tb);
        var c = new float[m * n];
        ColumnMajorSgemm(g.OpFirst == 1, g.OpSecond == 1, g.M, g.N, g.K, b, g.LdFirst, a, g.LdSecond, c, g.LdC);
        for (int i = 0; i < c.Length; i++) Assert.That(c[i], Is.EqualTo(expected[i]).Within(1e-5), $"c[{i}]");
    }

    // C (M×N, column-major, ldc) = op(X)(M×K)·op(Y)(K×N); X(i,p) at x[i + p·ldx] untransposed, x[p + i·ldx] transposed.
    private static void ColumnMajorSgemm(bool tx, bool ty, int M, int N, int K, float[] x, int ldx, float[] y, int ldy, float[] c, int ldc)
    {
        for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
        {
            double s = 0;
            for (int p = 0; p < K; p++)
                s += (double)(tx ? x[p + i * ldx] : x[i + p * ldx]) * (ty ? y[j + p * ldy] : y[p + j * ldy]);
            c[i + j * ldc] = (float)s;
        }
    }
}
