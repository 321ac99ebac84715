using Rlhf.Kernels;
using Rlhf.Tests.Support;
using KernelGemm = Rlhf.Kernels.Gemm;

namespace Rlhf.Tests.Kernels.Gemm;

[TestFixture]
public class GemmBehaviourTests
{
    // (3, ...) takes the GEMV-like path, (40, ...) the blocked one; n = 1 takes the transposed GEMV path.
    [TestCase(3, 50, 20, false, false)]
    [TestCase(3, 50, 20, true, true)]
    [TestCase(40, 50, 20, false, true)]
    [TestCase(40, 50, 20, true, false)]
    [TestCase(40, 1, 20, false, false)]
    public void NaNInARowPoisonsOnlyThatRow(int m, int n, int k, bool transposeA, bool transposeB)
    {
        var a = GemmReference.Random(m * k, 11);
        var b = GemmReference.Random(k * n, 12);
        int row = m - 1, depth = k / 2;
        a[transposeA ? depth * m + row : row * k + depth] = float.NaN;
        var c = new float[m * n];
        KernelGemm.Multiply(a, b, c, m, n, k, transposeA, transposeB);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                Assert.That(float.IsNaN(c[i * n + j]), Is.EqualTo(i == row), $"C[{i},{j}] = {c[i * n + j]}");
            }
        }
    }

    [TestCase(3, 50, 20, false)]
    [TestCase(40, 50, 20, true)]
    public void InfinityInBColumnGivesSignedInfinityOrNaN(int m, int n, int k, bool transposeB)
    {
        var a = GemmReference.Random(m * k, 13);
        for (int i = 0; i < a.Length; i++) a[i] = Math.Abs(a[i]) + 0.5f;
        a[0] = 0f; // row 0 meets the Inf with a zero: 0·Inf = NaN
        var b = GemmReference.Random(k * n, 14);
        int column = n / 2;
        b[transposeB ? column * k : column] = float.PositiveInfinity; // op(B)[0, column]
        var c = new float[m * n];
        KernelGemm.Multiply(a, b, c, m, n, k, transposeB: transposeB);
        Assert.That(float.IsNaN(c[column]), $"C[0,{column}] = {c[column]}");
        for (int i = 1; i < m; i++)
        {
            Assert.That(c[i * n + column], Is.EqualTo(float.PositiveInfinity), $"row {i}");
            Assert.That(float.IsFinite(c[i * n + column - 1]), $"row {i} neighbour");
        }
    }

    [TestCase(3, 40, 300)]
    [TestCase(40, 40, 300)]
    public void OverwriteIgnoresStaleNaNInC(int m, int n, int k)
    {
        var a = GemmReference.Random(m * k, 15);
        var b = GemmReference.Random(k * n, 16);
        var c = new float[m * n];
        Array.Fill(c, float.NaN);
        KernelGemm.Multiply(a, b, c, m, n, k);
        Assert.That(c.All(float.IsFinite), Is.True);
    }

    // Each shape has enough work for two threads: split by columns, by rows (n = 40), the GEMV path, and n = 1.
    [TestCase(300, 700, 300, false, true)]
    [TestCase(600, 40, 300, true, false)]
    [TestCase(5, 5000, 300, false, true)]
    [TestCase(6, 3000, 300, true, false)]
    [TestCase(8, 3001, 384, false, true)]
    [TestCase(7, 3001, 384, false, false)]
    [TestCase(3000, 1, 1000, true, false)]
    public void OneAndTwoThreadsGiveIdenticalBits(int m, int n, int k, bool transposeA, bool transposeB)
    {
        var a = GemmReference.Random(m * k, 21);
        var b = GemmReference.Random(k * n, 22);
        var one = GemmReference.Random(m * n, 23);
        var two = (float[])one.Clone();
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            KernelGemm.Multiply(a, b, one, m, n, k, transposeA, transposeB, accumulate: true);
            KernelParallelism.MaxThreads = 2;
            KernelGemm.Multiply(a, b, two, m, n, k, transposeA, transposeB, accumulate: true);
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }

        Assert.That(two, Is.EqualTo(one));
    }

    [Test]
    public void ShortSpansNameTheArgument()
    {
        var ok = new float[12];
        var shortOne = new float[11];
        Assert.Multiple(() =>
        {
            Assert.That(() => KernelGemm.Multiply(shortOne, ok, ok, 3, 4, 4),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("a").And.Message.Contains("11"));
            Assert.That(() => KernelGemm.Multiply(ok, shortOne, ok, 3, 4, 3),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("b"));
            Assert.That(() => KernelGemm.Multiply(ok, ok, shortOne, 3, 4, 3),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("c"));
            Assert.That(() => KernelGemm.Multiply(ok, ok, ok, -1, 4, 3),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("m"));
            Assert.That(() => KernelGemm.Multiply(ok, ok, ok, 1, -4, 3),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("n"));
            Assert.That(() => KernelGemm.Multiply(ok, ok, ok, 1, 4, -3),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("k"));
        });
    }

    [TestCase(256, 256, 256, false, true)]
    [TestCase(4, 256, 256, true, false)]
    [TestCase(1, 64, 64, false, false)]
    [TestCase(64, 1, 64, false, true)]
    public void SteadyStateAllocatesNothing(int m, int n, int k, bool transposeA, bool transposeB)
    {
        var a = GemmReference.Random(m * k, 31);
        var b = GemmReference.Random(k * n, 32);
        var c = new float[m * n];
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            Assert.That(Allocations.PerCall(() => KernelGemm.Multiply(a, b, c, m, n, k, transposeA, transposeB)), Is.EqualTo(0));
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }
    }
}
