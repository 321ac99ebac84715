using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

public unsafe class StreamAliasingTests
{
    [TestCase(0x1000_0000L, true)]
    [TestCase(0x2000_0000L, true)]
    [TestCase(0x1000_0040L, true)]
    [TestCase(0x0FFF_F040L, true)]
    [TestCase(0x1000_2000L, false)]
    [TestCase(0x1040_0000L, false)]
    [TestCase(0x0800_0000L, false)]
    [TestCase(0x40L, false)]
    [TestCase(0L, false)]
    public void Conflicts_OnlyNearMultiplesOf256MiB(long distance, bool expected)
    {
        // Addresses are only compared, never dereferenced.
        byte* first = (byte*)0x7F00_0000_0000L;
        Assert.That(StreamAliasing.Conflicts(first, first + distance), Is.EqualTo(expected));
        Assert.That(StreamAliasing.Conflicts(first + distance, first), Is.EqualTo(expected), "symmetric");
    }

    [Test]
    public void PrefetchingScan_GivesTheSameBits_OnRowsThatStartOnACacheLine([Values(16, 64, 1000, 20000)] int v, [Values(1f, 0.7f)] float temperature)
    {
        // The prefetching (aliasing) path also aligns its loads to the policy row; on a row that is aligned already
        // nothing moves, so the prefetches themselves must not change a bit.
        var x = OnACacheLine(Logits(1, v, seed: v));
        var y = OnACacheLine(Logits(1, v, seed: v + 1));
        var plain = KullbackLeiblerRowScan.Scan(x.Row, y.Row, 1f / temperature, prefetchReference: false);
        var prefetched = KullbackLeiblerRowScan.Scan(x.Row, y.Row, 1f / temperature, prefetchReference: true);
        Assert.That(prefetched.Kl, Is.EqualTo(plain.Kl));
        Assert.That(plain.Kl, Is.GreaterThan(0));
    }

    [Test]
    public void PrefetchingScan_OnMisalignedRows_DiffersOnlyInRounding([Values(16, 64, 1000, 20000)] int v, [Values(1f, 0.7f)] float temperature)
    {
        var policy = Logits(3, v, seed: v);
        var reference = Logits(3, v, seed: v + 1);
        fixed (float* x = policy, y = reference)
        {
            for (int row = 0; row < 3; row++)
            {
                var px = new ReadOnlySpan<float>(x + row * v, v);
                var py = new ReadOnlySpan<float>(y + row * v, v);
                var plain = KullbackLeiblerRowScan.Scan(px, py, 1f / temperature, prefetchReference: false);
                var prefetched = KullbackLeiblerRowScan.Scan(px, py, 1f / temperature, prefetchReference: true);
                AssertClose(plain.Kl, prefetched.Kl, 1e-6, 1e-7, $"row {row}");
            }
        }
    }

    private sealed class AlignedRow(float[] buffer, int offset, int length)
    {
        public ReadOnlySpan<float> Row => buffer.AsSpan(offset, length);
    }

    private static AlignedRow OnACacheLine(float[] values)
    {
        var buffer = GC.AllocateArray<float>(values.Length + 16, pinned: true);
        int offset;
        fixed (float* start = buffer) offset = (int)((64 - ((long)start & 63)) & 63) / 4;
        values.CopyTo(buffer, offset);
        return new AlignedRow(buffer, offset, values.Length);
    }
}
