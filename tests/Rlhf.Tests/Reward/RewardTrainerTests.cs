using Rlhf.Feedback;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tests.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Reward;

public class RewardTrainerTests
{
    private static RewardTrainer NewTrainer(RewardModelOptions options, ulong seed = 3) =>
        new(RewardTrainer.NewTrunk(PoliteData.TinyTrunk(), seed), new ByteTokenizer(), "byte", options);

    private static readonly RewardModelOptions Easy = new() { LearningRate = 3e-3f, Epochs = 3, BatchSize = 8, MaxLength = 48, EvalFraction = 0.2, Seed = 5 };

    [Test]
    public void EasyTask_LossFalls_HeldOutAccuracyRises()
    {
        var trainer = NewTrainer(Easy);
        var data = PoliteData.Pairs(80, 1);
        var (_, held) = DataSplit.Split(data.Count, Easy.EvalFraction, Easy.Seed);
        trainer.SetData(data);
        var (lossBefore, _) = trainer.Evaluate(held);
        var result = trainer.Train(data);
        Assert.That(result.Epochs, Has.Count.EqualTo(3));
        Assert.That(result.HeldOutPairs, Is.EqualTo(16));
        Assert.That(result.Epochs[^1].TrainLoss, Is.LessThan(result.Epochs[0].TrainLoss));
        Assert.That(result.Epochs[^1].HeldOutLoss, Is.LessThan(lossBefore * 0.5), $"held-out loss before {lossBefore}");
        Assert.That(result.Epochs[^1].HeldOutAccuracy, Is.EqualTo(1.0));
    }

    [Test]
    public void SameSeed_SameBits_DifferentSeed_Differs()
    {
        var data = PoliteData.Pairs(24, 2);
        var options = Easy with { Epochs = 1 };
        var a = NewTrainer(options);
        var b = NewTrainer(options);
        var ra = a.Train(data);
        var rb = b.Train(data);
        Assert.That(b.Model.Parameters, Is.EqualTo(a.Model.Parameters));
        Assert.That(b.Head.Parameters, Is.EqualTo(a.Head.Parameters));
        Assert.That(rb.Epochs[0].TrainLoss, Is.EqualTo(ra.Epochs[0].TrainLoss));
        Assert.That(rb.RewardMean, Is.EqualTo(ra.RewardMean));
        var c = NewTrainer(options with { Seed = 6 });
        c.Train(data);
        Assert.That(c.Head.Parameters, Is.Not.EqualTo(a.Head.Parameters));
    }

    [TestCase(false, PaddingSide.Right)]
    [TestCase(true, PaddingSide.Left)]
    public void FullGradient_HeadAndTrunk_MatchesFiniteDifferences(bool lora, PaddingSide padding)
    {
        // Margins and soft labels on, rows of different lengths (padding reaches the model).
        var config = TransformerConfig.Gpt2(vocabSize: 259, contextLength: 16, modelDim: 8, layerCount: 1, headCount: 2);
        var options = new RewardModelOptions { MaxLength = 12, UseMargins = true, Padding = padding, Lora = lora ? LoraConfig.Default(ModelFamily.Gpt2, rank: 2, alpha: 4) : null };
        var trunk = new TransformerModel(config);
        trunk.InitializeRandom(11, std: 0.3f);
        var trainer = new RewardTrainer(trunk, new ByteTokenizer(), "byte", options);
        trainer.Head.InitializeRandom(12, std: 0.5f);
        if (trunk.Adapter is { } a)
        {
            var r = ModelTestUtil.RandomFloats(a.Parameters.Length, 13, 0.3f);
            r.CopyTo(a.Parameters, 0);
        }

        var data = new List<PreferencePair>
        {
            new("1", "hi", "a", "yes ok", "b", "no", "", 0.5, 0.9),
            new("2", "q", "a", "x", "b", "longer one", "", 1.0, 0.3),
            new("3", "ab", "a", "fine", "b", "bad", "", 0.0, 1.0),
        };
        trainer.SetData(data);
        int[] batch = [0, 1, 2];
        trunk.ZeroGradients();
        Array.Clear(trainer.Head.Gradients);
        trainer.AccumulateGradients(batch);
        double Loss() => trainer.Evaluate(batch).Loss;
        FiniteDifference.Check(trainer.Head.Parameters, trainer.Head.Gradients.ToArray(), Loss, "head", h: 1e-2, tol: 5e-3);
        var (p, g) = trunk.Adapter is { } ad ? (ad.Parameters, ad.Gradients) : (trunk.Parameters, trunk.Gradients);
        var rng = new Xoshiro256(99);
        var idx = new int[60];
        for (int i = 0; i < idx.Length; i++) idx[i] = (int)(rng.NextUInt64() % (ulong)p.Length);
        // Include the largest-gradient entries so the check cannot pass on zeros alone.
        var top = Enumerable.Range(0, g.Length).OrderByDescending(i => Math.Abs(g[i])).Take(20);
        FiniteDifference.Check(p, g.ToArray(), Loss, lora ? "adapter" : "trunk", h: 1e-2, tol: 5e-3, indices: [.. idx, .. top]);
    }

    [Test]
    public void SaveLoad_ScoresMatchTheTrainer_CentredUsesSavedStatistics()
    {
        var data = PoliteData.Pairs(24, 4);
        var trainer = NewTrainer(Easy with { Epochs = 1, Lora = LoraConfig.Default(ModelFamily.Gpt2, rank: 2, alpha: 4) });
        var result = trainer.Train(data);
        Assert.That(trainer.Model.Adapter, Is.Not.Null);
        var scorer = new SequenceScorer(trainer.Model, trainer.Head, trainer.Encoder);
        var before = new float[2];
        scorer.Score([trainer.Encoder.Encode("Hi", "Thank you"), trainer.Encoder.Encode("Hi", "idiot")], before);
        string dir = Directory.CreateTempSubdirectory("rlhf-rm-").FullName;
        try
        {
            trainer.Save(dir);
            var rm = RewardModel.Load(dir);
            Assert.That(rm.RewardMean, Is.EqualTo(result.RewardMean));
            Assert.That(rm.RewardStd, Is.EqualTo(result.RewardStd));
            Assert.That(rm.Score("Hi", "Thank you"), Is.EqualTo(before[0]).Within(1e-4f));
            Assert.That(rm.Score("Hi", "idiot", centred: true), Is.EqualTo((before[1] - result.RewardMean) / result.RewardStd).Within(1e-3));
            var batch = new float[2];
            rm.Centred = false;
            ((IRewardFunction)rm).Score(["Hi", "Hi"], ["Thank you", "idiot"], batch);
            Assert.That(batch[0], Is.EqualTo(rm.Score("Hi", "Thank you")));
            Assert.That(batch[1], Is.EqualTo(rm.Score("Hi", "idiot")));
            Assert.Throws<ArgumentException>(() => ((IRewardFunction)rm).Score(["Hi"], ["a", "b"], batch));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void LoraTraining_LeavesTheBaseFrozen()
    {
        var trainer = NewTrainer(Easy with { Epochs = 1, Lora = LoraConfig.Default(ModelFamily.Gpt2, rank: 2, alpha: 4) });
        var baseBefore = trainer.Model.Parameters.ToArray();
        var adapterBefore = trainer.Model.Adapter!.Parameters.ToArray();
        trainer.Train(PoliteData.Pairs(16, 3));
        Assert.That(trainer.Model.Parameters, Is.EqualTo(baseBefore));
        Assert.That(trainer.Model.Adapter!.Parameters, Is.Not.EqualTo(adapterBefore));
    }

    [Test]
    public void BadOptionsAndData_NameTheProblem()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => NewTrainer(Easy with { EvalFraction = 1.5 }))!.ParamName, Is.EqualTo("EvalFraction"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => NewTrainer(Easy with { BatchSize = 0 }))!.ParamName, Is.EqualTo("BatchSize"));
        var trainer = NewTrainer(Easy);
        Assert.Throws<ArgumentException>(() => trainer.Train([]));
        var bad = new List<PreferencePair> { new("1", "p", "a", "x", "b", "y", "", 0, 1.5) };
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Train(bad))!.Message, Does.Contain("pair 0"));
    }

    [Test]
    public void Preference_RoundTripsThroughPairsJsonl_AndRejectsOutOfRange()
    {
        string dir = Directory.CreateTempSubdirectory("rlhf-pairs-").FullName;
        try
        {
            string path = Path.Combine(dir, "pairs.jsonl");
            PreferencePairs.Write(path, [new("1", "p", "a", "x", "b", "y", "l", 1, 0.75), new("2", "p", "a", "x", "b", "y", "l", 1)]);
            var back = PreferencePairs.Read(path);
            Assert.That(back[0].Preference, Is.EqualTo(0.75));
            Assert.That(back[1].Preference, Is.EqualTo(1.0));
            Assert.That(File.ReadAllLines(path)[1], Does.Not.Contain("preference"));
            File.WriteAllText(path, """{"prompt": "p", "chosen": "x", "rejected": "y", "preference": 2}""" + "\n");
            var e = Assert.Throws<Rlhf.IO.InvalidInputException>(() => PreferencePairs.Read(path));
            Assert.That(e!.Message, Does.Contain(":1:").And.Contain("preference"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
