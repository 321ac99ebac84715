using Rlhf.Kernels;
using KernelGemm = Rlhf.Kernels.Gemm;

namespace Rlhf.Tests.Kernels.Gemm;

[TestFixture]
public class GemmCorrectnessTests
{
    private static readonly (int M, int N, int K)[] OddShapes =
    [
        (1, 1, 1), (1, 70, 33), (40, 1, 33), (17, 33, 65), (100, 1, 300), (257, 130, 70),
        (3, 200, 37), (5, 83, 16), (8, 129, 300), (9, 31, 17), (15, 32, 1), (14, 32, 256),
        (6, 97, 40), (7, 33, 17), (8, 31, 384), (2, 1100, 19),
    ];

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (m, n, k) in OddShapes)
        {
            foreach (bool ta in new[] { false, true })
            {
                foreach (bool tb in new[] { false, true })
                {
                    foreach (bool acc in new[] { false, true })
                    {
                        yield return new TestCaseData(m, n, k, ta, tb, acc);
                    }
                }
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesDoubleReference(int m, int n, int k, bool transposeA, bool transposeB, bool accumulate)
        => Check(m, n, k, transposeA, transposeB, accumulate, KernelParallelism.MaxThreads);

    /// <summary>
    /// Crosses the blocked path's block boundaries with their edges: k = 390 makes two depth blocks (≤ 384 each);
    /// m = 341 crosses the 336-row block, n = 2083 the 2048-column block.
    /// </summary>
    [TestCase(341, 100, false, false, false)]
    [TestCase(341, 100, true, true, true)]
    [TestCase(20, 2083, false, true, false)]
    [TestCase(20, 2083, true, false, true)]
    public void MatchesDoubleReferenceAcrossCacheBlocks(int m, int n, bool transposeA, bool transposeB, bool accumulate)
        => Check(m, n, 390, transposeA, transposeB, accumulate, threads: 2);

    [TestCase(false)]
    [TestCase(true)]
    public void ZeroDepthClearsOrKeepsC(bool accumulate)
    {
        var c = GemmReference.Random(12, 5);
        var before = (float[])c.Clone();
        KernelGemm.Multiply(ReadOnlySpan<float>.Empty, ReadOnlySpan<float>.Empty, c, 3, 4, 0, accumulate: accumulate);
        Assert.That(c, Is.EqualTo(accumulate ? before : new float[12]));
    }

    private static void Check(int m, int n, int k, bool transposeA, bool transposeB, bool accumulate, int threads)
    {
        var a = GemmReference.Random(m * k, 1 + m);
        var b = GemmReference.Random(k * n, 2 + n);
        var c = GemmReference.Random(m * n, 3 + k);
        var (expected, magnitude) = GemmReference.Multiply(a, b, c, m, n, k, transposeA, transposeB, accumulate);
        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = threads;
            KernelGemm.Multiply(a, b, c, m, n, k, transposeA, transposeB, accumulate);
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }

        GemmReference.AssertClose(c, expected, magnitude, k, $"{m}x{n}x{k} tA={transposeA} tB={transposeB} acc={accumulate}");
    }
}
