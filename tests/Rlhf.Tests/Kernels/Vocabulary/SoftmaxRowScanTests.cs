using System.Runtime.Intrinsics.X86;
using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>The token-statistics row scan first runs unclamped and falls back to the clamped scan on rows that need it.</summary>
public class SoftmaxRowScanTests
{
    [Test]
    public void UnclampedScan_MatchesTheClampedScan_OnFiniteRows(
        [Values(3.0, 200.0, 2e4)] double scale, [Values(16, 1000, 20000)] int v, [Values(1f, 0.7f)] float temperature)
    {
        if (!Avx512F.IsSupported) Assert.Ignore("the unclamped scan is only used with AVX-512 (vscalefps)");
        var logits = Logits(3, v, seed: v, scale: scale);
        for (int row = 0; row < 3; row++)
        {
            var x = logits.AsSpan(row * v, v);
            var unclamped = SoftmaxRowScan.Scan<Enabled, Disabled>(x, 1f / temperature);
            var clamped = SoftmaxRowScan.Scan<Enabled, Enabled>(x, 1f / temperature);
            Assert.That(unclamped.Suspect, Is.False, $"row {row}: the unclamped scan must accept a finite row");
            Assert.That(unclamped.Max, Is.EqualTo(clamped.Max), $"row {row}");
            Assert.That(unclamped.LogSum, Is.EqualTo(clamped.LogSum).Within(1e-12 * Math.Max(1, Math.Abs(clamped.LogSum))), $"row {row}");
            Assert.That(unclamped.Entropy, Is.EqualTo(clamped.Entropy).Within(1e-12 * Math.Max(1, Math.Abs(clamped.Entropy))), $"row {row}");
            Assert.That(SoftmaxRowScan.Scan<Enabled>(x, 1f / temperature).LogSum, Is.EqualTo(unclamped.LogSum), $"row {row}: its result stands");
        }
    }

    [Test]
    public void RowsWithBannedTokens_FallBackToTheClampedScan_OrGetTheSameResult([Values(1000, 20000)] int v, [Values(true, false)] bool withEntropy)
    {
        var logits = Logits(1, v, seed: v);
        logits[v / 3] = float.NegativeInfinity;
        var expected = withEntropy ? SoftmaxRowScan.Scan<Enabled, Enabled>(logits, 1f) : SoftmaxRowScan.Scan<Disabled, Enabled>(logits, 1f);
        if (Avx512F.IsSupported)
        {
            // exp(−∞) comes out 0 or not finite: the log-sum is right or the row is rejected; the entropy's 0·(−∞)
            // always rejects it.
            var unclamped = withEntropy ? SoftmaxRowScan.Scan<Enabled, Disabled>(logits, 1f) : SoftmaxRowScan.Scan<Disabled, Disabled>(logits, 1f);
            if (withEntropy) Assert.That(unclamped.Suspect, Is.True, "the unclamped scan must reject the row");
            if (!unclamped.Suspect) Assert.That(unclamped.LogSum, Is.EqualTo(expected.LogSum).Within(1e-12 * Math.Abs(expected.LogSum)));
        }

        var result = withEntropy ? SoftmaxRowScan.Scan<Enabled>(logits, 1f) : SoftmaxRowScan.Scan<Disabled>(logits, 1f);
        Assert.That(result.Suspect, Is.False);
        Assert.That(result.LogSum, Is.EqualTo(expected.LogSum).Within(1e-12 * Math.Abs(expected.LogSum)));
        if (withEntropy) Assert.That(result.Entropy, Is.EqualTo(expected.Entropy));
    }
}
