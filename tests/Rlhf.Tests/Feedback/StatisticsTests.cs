using Rlhf.Feedback;

namespace Rlhf.Tests.Feedback;

public class StatisticsTests
{
    [Test]
    public void TauB_WithoutTies_IsConcordantMinusDiscordantOverPairs()
    {
        // Pairs of (1,2,3,4) vs (1,3,2,4): only (2,3) is discordant: (5 − 1) / 6.
        Assert.That(KendallTauB.Compute([1, 2, 3, 4], [1, 3, 2, 4]), Is.EqualTo(4.0 / 6).Within(1e-12));
        Assert.That(KendallTauB.Compute([1, 2, 3], [3, 2, 1]), Is.EqualTo(-1).Within(1e-12));
    }

    [Test]
    public void TauB_WithTies_UsesTheTieCorrection()
    {
        // C = 4, D = 0, 6 pairs, one tie in x and one in y: 4 / sqrt(5 · 5).
        Assert.That(KendallTauB.Compute([1, 1, 2, 3], [1, 2, 2, 3]), Is.EqualTo(0.8).Within(1e-12));
    }

    [Test]
    public void TauB_IsUndefinedWhenOneSideIsAllTies()
    {
        Assert.That(KendallTauB.Compute([1, 1, 1], [1, 2, 3]), Is.NaN);
    }

    [Test]
    public void TauB_RejectsMismatchedLengths()
    {
        var e = Assert.Throws<ArgumentException>(() => KendallTauB.Compute([1, 2], [1, 2, 3]));
        Assert.That(e!.ParamName, Is.EqualTo("y"));
    }

    [Test]
    public void KrippendorffOrdinal_MatchesThePublishedExample()
    {
        // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4-coder, 12-unit example with
        // missing values: the paper reports alpha = 0.815 for ordinal data.
        double?[][] coders =
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3],
            [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null],
        ];
        var units = Enumerable.Range(0, 12)
            .Select(u => (IReadOnlyList<double>)coders.Where(c => c[u].HasValue).Select(c => c[u]!.Value).ToList());
        Assert.That(KrippendorffAlpha.Ordinal(units), Is.EqualTo(0.815).Within(0.0005));
    }

    [Test]
    public void KrippendorffOrdinal_IsOneForPerfectAgreement()
    {
        var units = new List<IReadOnlyList<double>> { new double[] { 1, 1 }, new double[] { 2, 2 }, new double[] { 3, 3, 3 } };
        Assert.That(KrippendorffAlpha.Ordinal(units), Is.EqualTo(1).Within(1e-12));
    }
}
