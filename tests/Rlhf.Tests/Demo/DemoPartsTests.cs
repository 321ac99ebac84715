using Rlhf.Demo;
using Rlhf.Feedback;
using Rlhf.IO;

namespace Rlhf.Tests.Demo;

public class DemoPartsTests
{
    [Test]
    public void JudgePrefersPoliteHelpfulRepliesOverRudeOnesAndGibberish()
    {
        double polite = ReplyJudge.Score(" sorry about that, i will track it for you now. have a nice day.");
        double rude = ReplyJudge.Score(" ugh, you are so stupid. go away.");
        double noise = ReplyJudge.Score(" hank tor fug.");
        Assert.That(polite, Is.GreaterThan(noise));
        Assert.That(noise, Is.GreaterThan(rude));
    }

    [Test]
    public void TheNoisyLabelerIsFlaggedAndTheCarefulOnesAreNot()
    {
        var corpus = CustomerReplyCorpus.Generate(400, 3);
        var sets = new List<CompletionSet>();
        for (int i = 0; i + 4 <= corpus.Count; i += 4)
            sets.Add(new CompletionSet($"p{i}", "x", [.. Enumerable.Range(0, 4).Select(k => new Completion($"c{k}", corpus[i + k].Reply))]));
        var rankings = SimulatedLabelers.Rank(sets, new DemoOptions().NoisyLabelerRate, 11);
        var report = AgreementReport.Compute(rankings);
        Assert.That(report.FlaggedLabelers, Is.EquivalentTo(new[] { SimulatedLabelers.NoisyLabeler }));
    }

    [Test]
    public void ClassifierSeparatesHeldOutSentencesAndScoresCorpusRepliesByTheirLabel()
    {
        var c = ToxicityClassifier.Train(ToxicitySentences.Generate(1000, 5));
        Assert.That(c.Accuracy(ToxicitySentences.Generate(300, 6)), Is.GreaterThan(0.97));
        // The policy's corpus was not seen in training: the classifier must still tell its rude replies from polite ones.
        var corpus = CustomerReplyCorpus.Generate(300, 9);
        int ok = corpus.Count(e => (c.Probability(e.Reply) >= 0.5f) == e.IsRude);
        Assert.That((double)ok / corpus.Count, Is.GreaterThan(0.9));
    }

    [Test]
    public void RewardModelRanksChosenAboveRejectedAndIsCentred()
    {
        var corpus = CustomerReplyCorpus.Generate(400, 2);
        var polite = corpus.Where(e => !e.IsRude).ToList();
        var rude = corpus.Where(e => e.IsRude).ToList();
        var pairs = new List<PreferencePair>();
        for (int i = 0; i < Math.Min(polite.Count, rude.Count); i++)
            pairs.Add(new PreferencePair($"p{i}", "x", "a", polite[i].Reply, "b", rude[i].Reply, "ada", 1));
        var m = LinearRewardModel.Train(pairs, 30);
        Assert.That(m.History[^1].Loss, Is.LessThan(m.History[0].Loss));
        Assert.That(m.Accuracy(pairs), Is.EqualTo(1.0));
        double mean = pairs.Average(p => (m.Reward(p.Chosen) + m.Reward(p.Rejected)) / 2);
        Assert.That(mean, Is.EqualTo(0).Within(1e-3));
    }

    [Test]
    public void ConfigFileOverridesDefaultsAndRejectsUnknownOrBadSettings()
    {
        string dir = Directory.CreateTempSubdirectory("rlhf-demo-cfg").FullName;
        try
        {
            string good = Path.Combine(dir, "good.json");
            File.WriteAllText(good, "{ // comment\n \"ppoSteps\": 3, \"Seed\": 99 }");
            var o = DemoOptions.Load(good, DemoOptions.Quick);
            Assert.That(o.PpoSteps, Is.EqualTo(3));
            Assert.That(o.Seed, Is.EqualTo(99UL));
            Assert.That(o.PretrainSteps, Is.EqualTo(DemoOptions.Quick.PretrainSteps));

            string unknown = Path.Combine(dir, "unknown.json");
            File.WriteAllText(unknown, "{ \"ppoStep\": 3 }");
            Assert.That(() => DemoOptions.Load(unknown, new DemoOptions()), Throws.TypeOf<InvalidInputException>().With.Message.Contains("ppoStep"));

            string bad = Path.Combine(dir, "bad.json");
            File.WriteAllText(bad, "{ \"PpoSteps\": \"many\" }");
            Assert.That(() => DemoOptions.Load(bad, new DemoOptions()), Throws.TypeOf<InvalidInputException>().With.Message.Contains("bad.json"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void ValidateNamesTheBadSetting()
    {
        Assert.That(() => (new DemoOptions() with { PpoSteps = 0 }).Validate(), Throws.TypeOf<InvalidInputException>().With.Message.Contains("PpoSteps"));
        Assert.That(() => (new DemoOptions() with { PpoMiniBatch = 32, PpoBatch = 16 }).Validate(), Throws.TypeOf<InvalidInputException>().With.Message.Contains("PpoMiniBatch"));
        Assert.That(() => (new DemoOptions() with { ModelDim = 30, Heads = 4 }).Validate(), Throws.TypeOf<InvalidInputException>().With.Message.Contains("ModelDim"));
    }

    [Test]
    public void PretrainKeyChangesWithThePretrainingSettingsNotThePpoOnes()
    {
        var a = new DemoOptions();
        Assert.That((a with { PpoSteps = 1 }).PretrainKey(), Is.EqualTo(a.PretrainKey()));
        Assert.That((a with { PretrainSteps = 1 }).PretrainKey(), Is.Not.EqualTo(a.PretrainKey()));
        Assert.That((a with { Seed = 1 }).PretrainKey(), Is.Not.EqualTo(a.PretrainKey()));
    }
}
