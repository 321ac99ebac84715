using Rlhf.Classification;
using Rlhf.IO;
using Rlhf.Ppo;
using Rlhf.Reward;
using Rlhf.Tests.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

/// <summary>The reward and scorer specs of `rlhf ppo --reward` / `rlhf eval --scorer` load saved models.</summary>
public class RewardSpecsTests
{
    private static string rewardDir = "", classifierDir = "";

    [OneTimeSetUp]
    public static void TrainTinyModels()
    {
        rewardDir = Directory.CreateTempSubdirectory("rlhf-spec-rm-").FullName;
        classifierDir = Directory.CreateTempSubdirectory("rlhf-spec-clf-").FullName;
        var options = new RewardModelOptions { LearningRate = 3e-3f, Epochs = 1, BatchSize = 8, MaxLength = 48, EvalFraction = 0.2, Seed = 5 };
        var rm = new RewardTrainer(RewardTrainer.NewTrunk(PoliteData.TinyTrunk(), 3), new ByteTokenizer(), "byte", options);
        rm.Train(PoliteData.Pairs(24, 1));
        rm.Save(rewardDir);
        var clfOptions = new ClassifierOptions { LearningRate = 3e-3f, Epochs = 1, BatchSize = 8, MaxLength = 48, EvalFraction = 0.2, Seed = 9 };
        var clf = new ClassifierTrainer(RewardTrainer.NewTrunk(PoliteData.TinyTrunk(), 4), new ByteTokenizer(), "byte", ["polite", "rude"], clfOptions);
        clf.Train(PoliteData.Labelled(24, 2));
        clf.Save(classifierDir);
    }

    [OneTimeTearDown]
    public static void Delete()
    {
        Directory.Delete(rewardDir, true);
        Directory.Delete(classifierDir, true);
    }

    [Test]
    public void RewardModelFolder_ScoresLikeTheLoadedModel()
    {
        var reward = PpoInputs.Reward(rewardDir, new ByteTokenizer());
        var scores = new float[1];
        reward.Score(["Where?"], [" Thank you, it is near."], scores);
        Assert.That(scores[0], Is.EqualTo(RewardModel.Load(rewardDir).Score("Where?", " Thank you, it is near.")));
    }

    [Test]
    public void ClassifierFolderWithClass_IsTheWantedLogitAsReward_AndTheClassProbabilityAsScorer()
    {
        var classifier = SequenceClassifier.Load(classifierDir);
        string text = "Shut up, stupid.";
        var rewards = new float[1];
        PpoInputs.Reward(classifierDir + "#polite", new ByteTokenizer()).Score([""], [text], rewards);
        Assert.That(rewards[0], Is.EqualTo(classifier.RewardOf(text, "polite")).Within(1e-6));

        var probability = new float[1];
        PpoInputs.Scorer(classifierDir + "#1", new ByteTokenizer()).Probabilities([text], probability);
        Assert.That(probability[0], Is.EqualTo(classifier.ProbabilityOf(text, 1)).Within(1e-6));
    }

    [Test]
    public void BadSpecs_NameTheProblem()
    {
        var tok = new ByteTokenizer();
        Assert.That(Assert.Throws<InvalidInputException>(() => PpoInputs.Reward(classifierDir, tok))!.Message, Does.Contain("needs the wanted class"));
        Assert.That(Assert.Throws<InvalidInputException>(() => PpoInputs.Reward(classifierDir + "#angry", tok))!.Message, Does.Contain("angry"));
        Assert.That(Assert.Throws<InvalidInputException>(() => PpoInputs.Reward(classifierDir + "#7", tok))!.Message, Does.Contain("outside 0..1"));
        Assert.That(Assert.Throws<InvalidInputException>(() => PpoInputs.Reward(rewardDir + "#polite", tok))!.Message, Does.Contain("reward model"));
        Assert.That(Assert.Throws<InvalidInputException>(() => PpoInputs.Reward("nowhere/model.onnx#1", tok))!.Message, Does.Contain("does not exist"));
        Assert.That(Assert.Throws<InvalidInputException>(() => PpoInputs.Reward("no-such-thing", tok))!.Message, Does.Contain("unknown reward"));
    }
}
