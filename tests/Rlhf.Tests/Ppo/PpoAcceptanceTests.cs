using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Classification;
using Rlhf.Ppo;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

/// <summary>
/// The tutorial's evaluation with real data: mean toxicity of tinyllamas-stories260K's outputs over the 500 DialogSum
/// test dialogues (wrapped in a summarisation prompt), before and after a short PPO run against a toxicity
/// classifier. The classifier is the product's: <see cref="ClassifierTrainer"/> (what <c>rlhf train-classifier</c>
/// runs) on toxicity-surge with a stories260K trunk, saved, and loaded back through <see cref="RewardSpecs"/> exactly as
/// <c>rlhf ppo --reward DIR#Not Toxic</c> and <c>rlhf eval --scorer DIR#Toxic</c> do. Evaluation goes through
/// <see cref="PpoEvaluation"/>, the library call behind <c>rlhf eval</c>.
/// </summary>
[Category("Acceptance")]
public class PpoAcceptanceTests
{
    [Test]
    public void DialogSumToxicityBeforeAndAfterPpo()
    {
        var tok = Llama2cTokenizer.Load(FormatTestFiles.SharedStories("tok512.bin"));
        string data = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(FormatTestFiles.SharedStories("tok512.bin")))!);
        using var dir = new TempDir();
        string classifierDir = dir.File("toxicity");
        double accuracy = TrainToxicityClassifier(Path.Combine(data, "toxicity-surge", "toxicity_en.csv"), classifierDir);
        TestContext.Out.WriteLine($"toxicity classifier held-out accuracy {accuracy:F3}");
        Assert.That(accuracy, Is.GreaterThan(0.6), "the classifier separates toxic from non-toxic text");
        var reward = RewardSpecs.TryReward(classifierDir + "#Not Toxic")!;
        var scorer = RewardSpecs.TryScorer(classifierDir + "#Toxic")!;

        var test = DialogPrompts(Path.Combine(data, "dialogsum", "dialogsum.test.jsonl"), int.MaxValue);
        Assert.That(test, Has.Count.EqualTo(500));
        var train = DialogPrompts(Path.Combine(data, "dialogsum", "dialogsum.dev.jsonl"), 200);
        var policy = ModelCheckpoint.Load(FormatTestFiles.SharedStories("stories260K.bin"));
        var evalOptions = new EvalOptions { MaxNewTokens = 24, BatchSize = 25, Seed = 5 };
        var before = PpoEvaluation.Evaluate("before (stories260K)", policy, false, tok, test, scorer, reward, evalOptions);

        var options = new PpoOptions
        {
            BatchSize = 16, MiniBatchSize = 8, PpoEpochs = 4, MaxNewTokens = 24, LearningRate = 1e-3f, LoraRank = 8, LoraTargets = ["q_proj", "v_proj", "o_proj", "up_proj"],
            InitialKlCoef = 0.2f, TargetKl = 6f, ScoreScaling = true, ScoreNormalization = true, MaxSteps = 20, Seed = 9, CheckpointEvery = 10,
        };
        var trainer = new PpoTrainer(policy, tok, reward, train, options);
        string run = dir.File("run");
        var metrics = PpoRun.Run(trainer, run, progress: m => TestContext.Out.WriteLine($"{m.Iteration} score {m.MeanScore:F3} kl {m.MeanKl:F3} {m.TokensPerSecond:F0} tok/s"));
        var after = PpoEvaluation.Evaluate("after (PPO, LoRA)", policy, true, tok, test, scorer, reward, evalOptions);
        PpoEvaluation.WriteReport(run, [before, after]);
        string table = File.ReadAllText(Path.Combine(run, "eval.md"));
        TestContext.Out.WriteLine(table);
        Assert.That(table, Does.Contain("before").And.Contain("after"));
        Assert.That(after.MeanToxicity, Is.LessThan(before.MeanToxicity), "PPO against the classifier lowers the mean toxicity");
        Assert.That(after.MeanKl, Is.GreaterThan(0).And.LessThan(options.TargetKl), "the policy moved, but stays near the reference");
        Assert.That(metrics, Has.Count.EqualTo(options.MaxSteps));
    }

    private static List<string> DialogPrompts(string path, int max)
    {
        var list = new List<string>();
        foreach (var line in File.ReadLines(path))
        {
            if (list.Count >= max) break;
            using var doc = JsonDocument.Parse(line);
            string dialogue = doc.RootElement.GetProperty("dialogue").GetString()!;
            if (dialogue.Length > 300) dialogue = dialogue[..300];
            list.Add("Summarize the following dialogue.\n" + dialogue + "\nSummary:");
        }

        return list;
    }

    /// <summary>
    /// Full fine-tuning of stories260K with a 2-class head on toxicity-surge (labels "Not Toxic" / "Toxic"), the last 40
    /// tokens of each text, 10 % held out; saved to <paramref name="directory"/>. Returns the held-out accuracy.
    /// </summary>
    private static double TrainToxicityClassifier(string csv, string directory)
    {
        var data = LabelledTexts.Read(csv, "text", "is_toxic");
        string tokenizerPath = FormatTestFiles.SharedStories("tok512.bin");
        var trunk = ModelCheckpoint.Load(FormatTestFiles.SharedStories("stories260K.bin"));
        var options = new ClassifierOptions { LearningRate = 2e-3f, Epochs = 3, BatchSize = 16, MaxLength = 40, EvalFraction = 0.1, Seed = 42 };
        var trainer = new ClassifierTrainer(trunk, TokenizerLoader.Load(tokenizerPath), tokenizerPath, LabelledTexts.LabelNames(data), options);
        var result = trainer.Train(data);
        trainer.Save(directory);
        return result.Epochs[^1].HeldOutAccuracy;
    }
}
