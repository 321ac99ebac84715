using Rlhf.Kernels.Device;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Tests.Cuda;

/// <summary>The rollout helpers of <see cref="DevicePpoKernels"/> (k1/k3, masked sums, row gathers) against the CPU kernels and scalar references.</summary>
[NonParallelizable]
public class RolloutKernelTests : DeviceTestBase
{
    private DevicePpoKernels kernels = null!;

    protected override void OnDevice() => kernels = new DevicePpoKernels(Device);

    [OneTimeTearDown]
    public void DisposeKernels() => kernels.Dispose();

    [Test]
    public void K1AndK3MatchTheCpuEstimators()
    {
        // Log-ratios on both sides of the series' |u| < ½ switch, exact zeros, and the IEEE cases.
        var logp = Random(61, 1, 2f);
        var reference = Random(61, 2, 0.3f);
        for (int i = 0; i < 61; i++) reference[i] += i % 3 == 0 ? logp[i] : 0f;
        logp[0] = reference[0] = -1.25f;
        reference[1] = float.NegativeInfinity;
        logp[2] = float.NaN;
        var k1 = new float[61];
        var k3 = new float[61];
        KullbackLeibler.K1(logp, reference, k1);
        KullbackLeibler.K3(logp, reference, k3);
        var lp = Up(logp);
        var rf = Up(reference);
        var d1 = Up(new float[61]);
        var d3 = Up(new float[61]);
        kernels.Difference(lp, rf, d1);
        kernels.K3(lp, rf, d3);
        Assert.That(Down(d1), Is.EqualTo(k1), "k1 is the same subtraction");
        var got = Down(d3);
        Assert.That(got[0], Is.EqualTo(0f));
        Assert.That(got[1], Is.EqualTo(float.PositiveInfinity), "r = 0 gives +∞");
        Assert.That(float.IsNaN(got[2]), "NaN propagates");
        AssertClose(got.AsSpan(3), k3.AsSpan(3), 1e-5, "k3");
    }

    [TestCase(3, 7, 0)]
    [TestCase(3, 7, 1)]
    [TestCase(40, 33, 900)]
    public void MaskedSumCountsAndSumsTheValidEntries(int batch, int steps, int valid)
    {
        int n = batch * steps;
        var x = Random(n, 3);
        var mask = new float[n];
        for (int i = 0; i < valid; i++) mask[(i * 7) % n] = 1f;
        double want = 0;
        long count = 0;
        for (int i = 0; i < n; i++)
        {
            if (mask[i] == 0f) continue;
            want += x[i];
            count++;
        }

        var (sum, got) = kernels.MaskedSum(Up(x), Up(mask));
        Assert.That(got, Is.EqualTo(count));
        Assert.That(sum, Is.EqualTo(want).Within(1e-5 * Math.Sqrt(n) + 1e-7));
        Assert.Throws<ArgumentException>(() => kernels.MaskedSum(Up(x), Up(new float[n + 1])));
    }

    [Test]
    public void GatherRowsCopiesTheChosenRowsInOrder()
    {
        const int batch = 5, steps = 6;
        var source = Random(batch * steps, 4);
        int[] rows = [4, 0, 4, 2];
        var dest = Up(new float[rows.Length * steps]);
        kernels.GatherRows(Up(source), Up(rows), dest, steps);
        var want = new float[rows.Length * steps];
        for (int i = 0; i < rows.Length; i++) Array.Copy(source, rows[i] * steps, want, i * steps, steps);
        Assert.That(Down(dest), Is.EqualTo(want));
        var ex = Assert.Throws<ArgumentException>(() => kernels.GatherRows(Up(source), Up(rows), Up(new float[5]), steps));
        Assert.That(ex!.ParamName, Is.EqualTo("destination"));
    }
}
