using System.Runtime.CompilerServices;
using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>
/// Where its buffers alias (the prefetching path) the KL row scan takes the first 0–15 logit pairs of a row alone so
/// that its other loads are aligned: every alignment of a row must give the reference result, with the row's maxima,
/// a banned token or a NaN inside that head. Elsewhere both row scans load from wherever the row starts, and their
/// bits must not depend on the alignment; they are held to the reference at every alignment too.
/// </summary>
public class RowScanAlignmentTests
{
    private static readonly int[] Offsets = Enumerable.Range(0, 16).ToArray();

    [Test]
    public unsafe void FloatsToBoundary_EndsOnA64ByteBoundary([ValueSource(nameof(Offsets))] int offset)
    {
        var buffer = GC.AllocateArray<float>(64, pinned: true);
        ref float start = ref buffer[offset];
        int head = CacheLine.FloatsToBoundary(ref start);
        Assert.That(head, Is.InRange(0, 15));
        Assert.That((long)Unsafe.AsPointer(ref Unsafe.Add(ref start, head)) % 64, Is.EqualTo(0L));
    }

    [Test]
    public void TokenStatisticsScan_MatchesTheReference_AtEveryAlignment(
        [ValueSource(nameof(Offsets))] int offset, [Values(16, 100, 1000)] int v, [Values(1f, 0.7f)] float temperature)
    {
        var buffer = GC.AllocateArray<float>(v + 16, pinned: true);
        Logits(1, v, seed: v + offset).CopyTo(buffer, offset);
        var row = buffer.AsSpan(offset, v);
        row[2] = 40f; // the row's maximum, inside the head at most alignments
        row[1] = float.NegativeInfinity;
        AssertMatchesReference(row, temperature);
    }

    [Test]
    public void TokenStatisticsScan_FindsANaNInTheHead([ValueSource(nameof(Offsets))] int offset)
    {
        const int v = 200;
        var buffer = GC.AllocateArray<float>(v + 16, pinned: true);
        Logits(1, v, seed: 5).CopyTo(buffer, offset);
        buffer[offset] = float.NaN;
        Assert.That(SoftmaxRowScan.Scan<Enabled>(buffer.AsSpan(offset, v), 1f).Suspect, Is.True);
        Assert.That(SoftmaxRowScan.Scan<Disabled>(buffer.AsSpan(offset, v), 1f).Suspect, Is.True);
    }

    [Test]
    public void KlScan_MatchesTheReference_AtEveryAlignment(
        [ValueSource(nameof(Offsets))] int offset, [Values(0, 3)] int referenceShift, [Values(100, 1000)] int v,
        [Values(true, false)] bool aligningPath)
    {
        var policy = GC.AllocateArray<float>(v + 32, pinned: true);
        var reference = GC.AllocateArray<float>(v + 32, pinned: true);
        Logits(1, v, seed: v + offset).CopyTo(policy, offset);
        Logits(1, v, seed: v + offset + 1).CopyTo(reference, offset + referenceShift);
        var x = policy.AsSpan(offset, v);
        var y = reference.AsSpan(offset + referenceShift, v);
        x[3] = 30f;
        y[1] = 25f;
        x[2] = float.NegativeInfinity;
        y[2] = float.NegativeInfinity;
        var result = KullbackLeiblerRowScan.Scan(x, y, 1f, prefetchReference: aligningPath);
        Assert.That(result.Suspect, Is.False);
        AssertClose(VocabularyReference.Kl(x, y, 1.0), result.Kl, 1e-5, 1e-7, $"KL at offset {offset}");
    }

    [Test]
    public void WithoutAliasing_TheBitsDoNotDependOnTheAlignment()
    {
        const int v = 1000;
        var policy = Logits(1, v, seed: 21);
        var reference = Logits(1, v, seed: 22);
        var moments = SoftmaxRowScan.Scan<Enabled>(policy, 1f);
        double kl = KullbackLeiblerRowScan.Scan(policy, reference, 1f).Kl;
        var x = GC.AllocateArray<float>(v + 16, pinned: true);
        var y = GC.AllocateArray<float>(v + 16, pinned: true);
        foreach (int offset in Offsets)
        {
            policy.CopyTo(x, offset);
            reference.CopyTo(y, offset);
            var at = SoftmaxRowScan.Scan<Enabled>(x.AsSpan(offset, v), 1f);
            Assert.That((at.LogSum, at.Entropy), Is.EqualTo((moments.LogSum, moments.Entropy)), $"token statistics at offset {offset}");
            Assert.That(KullbackLeiblerRowScan.Scan(x.AsSpan(offset, v), y.AsSpan(offset, v), 1f).Kl, Is.EqualTo(kl), $"KL at offset {offset}");
        }
    }

    [Test]
    public void KlScan_FindsANaNInTheHead([ValueSource(nameof(Offsets))] int offset, [Values(true, false)] bool inPolicy)
    {
        const int v = 200;
        var policy = GC.AllocateArray<float>(v + 16, pinned: true);
        var reference = GC.AllocateArray<float>(v + 16, pinned: true);
        Logits(1, v, seed: 7).CopyTo(policy, offset);
        Logits(1, v, seed: 8).CopyTo(reference, offset);
        (inPolicy ? policy : reference)[offset + 1] = float.NaN;
        foreach (bool aligningPath in new[] { true, false })
        {
            var result = KullbackLeiblerRowScan.Scan(policy.AsSpan(offset, v), reference.AsSpan(offset, v), 1f, aligningPath);
            Assert.That(result.Suspect || double.IsNaN(result.Kl), Is.True, $"aligning path {aligningPath}");
        }
    }

    [Test]
    public void Backward_GivesTheSameBitsAtEveryAlignment([Values(16, 17, 31, 50, 1000)] int v)
    {
        // The in-place backward stores its first and last 16 after its aligned loop: every element must be written
        // once with its own gradient, wherever the row starts.
        var logits = Logits(1, v, seed: v);
        logits[v / 2] = float.NegativeInfinity;
        int[] token = [v / 3];
        float[] logProbs = new float[1], entropy = new float[1], lse = new float[1];
        TokenStatistics.Compute(logits, token, v, 0.8f, logProbs, entropy, lse);
        var expected = (float[])logits.Clone();
        TokenStatistics.Backward(expected, token, v, 0.8f, lse, entropy, [1.5f], [0.25f]);
        var buffer = GC.AllocateArray<float>(v + 16, pinned: true);
        foreach (int offset in Offsets)
        {
            logits.CopyTo(buffer, offset);
            TokenStatistics.Backward(buffer.AsSpan(offset, v), token, v, 0.8f, lse, entropy, [1.5f], [0.25f]);
            Assert.That(buffer.AsSpan(offset, v).ToArray(), Is.EqualTo(expected), $"offset {offset}");
        }

        for (int j = 0; j < v; j++)
        {
            double p = j == v / 2 ? 0 : Math.Exp(logits[j] / 0.8 - lse[0]);
            double logp = j == v / 2 ? 0 : logits[j] / 0.8 - lse[0];
            double grad = (1.5 * ((j == token[0] ? 1 : 0) - p) - 0.25 * p * (logp + entropy[0])) / 0.8;
            AssertClose(grad, expected[j], 1e-4, 1e-6, $"gradient[{j}]");
        }
    }

    private static void AssertMatchesReference(ReadOnlySpan<float> row, float temperature)
    {
        var expected = VocabularyReference.Row(row, 0, temperature);
        foreach (var moments in new[] { SoftmaxRowScan.Scan<Enabled>(row, 1f / temperature), SoftmaxRowScan.Scan<Disabled>(row, 1f / temperature) })
        {
            Assert.That(moments.Suspect, Is.False);
            double lse = (double)moments.Max / temperature + moments.LogSum;
            AssertClose(expected.LogSumExp, lse, 1e-6, 1e-6, "log-sum-exp");
        }

        AssertClose(expected.Entropy, SoftmaxRowScan.Scan<Enabled>(row, 1f / temperature).Entropy, 1e-5, 1e-6, "entropy");
    }
}
