using System.Text.Json;
using Rlhf.Feedback;

namespace Rlhf.Tests.Feedback;

public class AgreementTests
{
    [Test]
    public void TutorialExample_FlagsTheThirdLabelerOnly()
    {
        var report = AgreementReport.Compute(TutorialExample.Rankings);
        Assert.That(report.FlaggedLabelers, Is.EqualTo(new[] { "labeler3" }));

        // labeler1 (2,1,3) vs the mean of labeler2 and labeler3, (1.5, 2, 2.5): pairs (a,b) discordant,
        // (a,c) and (b,c) concordant: tau-b = 1/3. labeler3 (1,3,2) vs (2,1,3): one concordant, two discordant.
        var byName = report.Labelers.ToDictionary(l => l.Labeler);
        Assert.That(byName["labeler1"].MeanTauB, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(byName["labeler2"].MeanTauB, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(byName["labeler3"].MeanTauB, Is.EqualTo(-1.0 / 3).Within(1e-12));
    }

    [Test]
    public void Report_RendersTableAndJson()
    {
        var report = AgreementReport.Compute(TutorialExample.Rankings);
        Assert.That(report.ToTable(), Does.Contain("| labeler3 | 1 | 1 | -0.333 | yes |"));
        using var json = JsonDocument.Parse(report.ToJson());
        var labelers = json.RootElement.GetProperty("labelers");
        Assert.That(labelers.GetArrayLength(), Is.EqualTo(3));
        Assert.That(labelers[2].GetProperty("flagged").GetBoolean(), Is.True);
        Assert.That(json.RootElement.GetProperty("krippendorff_alpha_ordinal").GetDouble(), Is.EqualTo(report.KrippendorffAlpha));
    }

    [Test]
    public void FailedAnswers_CountBelowEveryRank_InConsensus()
    {
        var set = TutorialExample.Set;
        var rankings = new[]
        {
            new Ranking("x", "hot", [Rank.Failed, Rank.Of(1), Rank.Of(2)], "t"),
            new Ranking("y", "hot", [Rank.Of(3), Rank.Of(1), Rank.Of(2)], "t"),
        };
        var consensus = Consensus.Of(set.PromptId, rankings);
        // F among 3 completions scores 4: a = (4 + 3) / 2.
        Assert.That(consensus.MeanScores, Is.EqualTo(new[] { 3.5, 1.0, 2.0 }));
    }
}
