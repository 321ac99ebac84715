using Rlhf.Feedback;

namespace Rlhf.Tests.Feedback;

public class PairBuilderTests
{
    [Test]
    public void TutorialRanking_GivesItsThreePairsInOrder_PreferredFirst()
    {
        var pairs = PairBuilder.FromRanking(TutorialExample.Set, TutorialExample.Rankings[0]);
        Assert.That(pairs.Select(p => (p.ChosenId, p.RejectedId)), Is.EqualTo(new[] { ("b", "a"), ("a", "c"), ("b", "c") }));
        Assert.That(pairs[0].Chosen, Is.EqualTo("You can cool your house with air conditioning."));
        Assert.That(pairs.Select(p => p.Margin), Is.EqualTo(new[] { 1.0, 1.0, 2.0 }));
        Assert.That(pairs.All(p => p.Labeler == "labeler1" && p.Prompt == "My house is too hot."));
    }

    [Test]
    public void TiesAreSkipped_FailedRanksBelowEveryRankedAnswer_TwoFailuresGiveNoPair()
    {
        var set = new CompletionSet("p", "q", [new("w", "1"), new("x", "2"), new("y", "3"), new("z", "4")]);
        var ranking = new Ranking("l", "p", [Rank.Failed, Rank.Of(1), Rank.Of(1), Rank.Failed], "test");
        var pairs = PairBuilder.FromRanking(set, ranking);
        // (w,x): x wins; (w,y): y wins; (w,z): both F, no pair; (x,y): tie, no pair; (x,z), (y,z): ranked beats F.
        Assert.That(pairs.Select(p => (p.ChosenId, p.RejectedId)),
            Is.EqualTo(new[] { ("x", "w"), ("y", "w"), ("x", "z"), ("y", "z") }));
    }

    [Test]
    public void FullRankingOfN_GivesNChooseTwoPairs()
    {
        var set = new CompletionSet("p", "q", Enumerable.Range(0, 6).Select(i => new Completion($"c{i}", $"t{i}")).ToList());
        var ranking = new Ranking("l", "p", [Rank.Of(3), Rank.Of(6), Rank.Of(1), Rank.Of(5), Rank.Of(2), Rank.Of(4)], "test");
        var pairs = PairBuilder.FromRanking(set, ranking);
        Assert.That(pairs, Has.Count.EqualTo(15));
        var rankOf = set.Completions.Select((c, i) => (c.Id, ranking.Ranks[i].Value)).ToDictionary(x => x.Id, x => x.Value);
        Assert.That(pairs.All(p => rankOf[p.ChosenId] < rankOf[p.RejectedId]));
    }

    [Test]
    public void ConsensusPairs_FollowMeanRanks()
    {
        var consensus = Consensus.Of("hot", TutorialExample.Rankings);
        // Mean scores: a = (2+2+1)/3, b = (1+1+3)/3, c = (3+3+2)/3: b and a tie at 5/3, c is last.
        Assert.That(consensus.MeanScores, Is.EqualTo(new[] { 5.0 / 3, 5.0 / 3, 8.0 / 3 }).Within(1e-12));
        var pairs = PairBuilder.FromConsensus(TutorialExample.Set, consensus);
        Assert.That(pairs.Select(p => (p.ChosenId, p.RejectedId)), Is.EqualTo(new[] { ("a", "c"), ("b", "c") }));
        Assert.That(pairs[0].Labeler, Is.EqualTo("consensus"));
    }

    [Test]
    public void ConsensusTiesAreExact_WhateverOrderTheLabelersAddUp()
    {
        // A's scores 1, 1, 4 and B's 4, 1, 1 both average 2; summed as thirds in labeler order they came out
        // 2 and 1.9999999999999998, and the rounding became a "B > A" pair nobody expressed.
        var set = new CompletionSet("p", "q", [new("A", "a"), new("B", "b"), new("C", "c"), new("D", "d")]);
        Ranking Of(string labeler, params int[] ranks) => new(labeler, "p", ranks.Select(Rank.Of).ToArray(), "test");
        var consensus = Consensus.Of("p", [Of("ana", 1, 4, 2, 3), Of("bob", 1, 1, 3, 4), Of("cy", 4, 1, 2, 3)]);
        Assert.That(consensus.MeanScores[0], Is.EqualTo(consensus.MeanScores[1]));
        var pairs = PairBuilder.FromConsensus(set, consensus);
        Assert.That(pairs.Any(p => (p.ChosenId, p.RejectedId) is ("A", "B") or ("B", "A")), Is.False);
    }

    [Test]
    public void Thumbs_PreferUpOverDownWithinALabelersPrompt()
    {
        var thumbs = new[]
        {
            new ThumbFeedback("l", "hot", "a", false, "t"),
            new ThumbFeedback("l", "hot", "b", true, "t"),
            new ThumbFeedback("l", "hot", "c", false, "t"),
            new ThumbFeedback("m", "hot", "c", true, "t"),
        };
        var pairs = PairBuilder.FromThumbs(TutorialExample.Sets, thumbs);
        Assert.That(pairs.Select(p => (p.Labeler, p.ChosenId, p.RejectedId)), Is.EqualTo(new[] { ("l", "b", "a"), ("l", "b", "c") }));
    }

    [Test]
    public void PairsFile_RoundTrips()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pairs-{Guid.NewGuid():N}.jsonl");
        try
        {
            var pairs = PairBuilder.FromRanking(TutorialExample.Set, TutorialExample.Rankings[0]);
            PreferencePairs.Write(path, pairs);
            Assert.That(PreferencePairs.Read(path), Is.EqualTo(pairs));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase("1e999")]
    [TestCase("-1e999")]
    [TestCase("1e308")] // finite as a double, infinite as the float training uses
    [TestCase("\"NaN\"")]
    [TestCase("\"2\"")]
    public void PairsFile_NonFiniteOrNonNumericMargin_IsBadInputNamingFileAndLine(string margin)
    {
        using var dir = new Rlhf.Tests.Formats.TempDir();
        string path = dir.File("pairs.jsonl");
        File.WriteAllLines(path,
        [
            """{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1}""",
            $$"""{"prompt": "p", "chosen": "a", "rejected": "b", "margin": {{margin}}}""",
        ]);
        Assert.That(() => PreferencePairs.Read(path),
            Throws.TypeOf<Rlhf.IO.InvalidInputException>().With.Message.Contains($"{path}:2: \"margin\" must be a finite number").And.Message.Contains(margin));
    }
}
