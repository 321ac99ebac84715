using System.Text.Json;
using Rlhf.Feedback;
using Rlhf.Tests.Reward;
using Rlhf.Tests.Support;

namespace Rlhf.Tests.Cli;

public class RewardCommandsTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cli-reward-").FullName;
        PreferencePairs.Write(Path.Combine(dir, "pairs.jsonl"), PoliteData.Pairs(40, 1));
        var labelled = PoliteData.Labelled(40, 1);
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["text,label", .. labelled.Select(x => $"\"{x.Text}\",{x.Label}")]);
        File.WriteAllText(Path.Combine(dir, "responses.jsonl"), "{\"prompt\": \"Can you help me?\", \"response\": \"Please look here, thank you.\"}\n{\"prompt\": \"Can you help me?\", \"response\": \"Shut up, stupid.\"}\n");
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private static readonly string[] Tiny = ["--layers", "1", "--dim", "16", "--heads", "2", "--max-length", "48", "--lr", "3e-3", "--epochs", "5", "--eval-fraction", "0.2"];

    [Test]
    public void TrainReward_ThenScore_HappyPath()
    {
        var train = CliRunner.Run(dir, ["train-reward", "--pairs", "pairs.jsonl", "--out", "rm", .. Tiny]);
        Assert.That(train.ExitCode, Is.EqualTo(0), train.Stderr);
        Assert.That(train.Stdout, Does.Contain("reward model saved").And.Not.Contain("epoch"), "progress goes to standard error");
        Assert.That(train.Stderr, Does.Contain("train-reward epoch 5/5 loss"));
        var metrics = File.ReadAllLines(Path.Combine(dir, "rm", "metrics.jsonl"));
        Assert.That(metrics, Has.Length.EqualTo(5));
        using (var last = JsonDocument.Parse(metrics[^1])) Assert.That(last.RootElement.GetProperty("eval_accuracy").GetDouble(), Is.EqualTo(1.0));
        using (var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "rm", "training_config.json"))))
            Assert.That(cfg.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(5));
        // The byte vocabulary (259) has no GPT-2 <|endoftext|> (50256): config.json names no special ids rather than a wrong one.
        Assert.That(File.ReadAllText(Path.Combine(dir, "rm", "config.json")), Does.Not.Contain("50256"));

        var score = CliRunner.Run(dir, "score", "--model", "rm", "--input", "responses.jsonl", "--out", "scores.jsonl");
        Assert.That(score.ExitCode, Is.EqualTo(0), score.Stderr);
        var lines = File.ReadAllLines(Path.Combine(dir, "scores.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("score").GetDouble()).ToArray();
        Assert.That(lines, Has.Length.EqualTo(2));
        Assert.That(lines[0], Is.GreaterThan(lines[1]));

        var again = CliRunner.Run(dir, ["train-reward", "--pairs", "pairs.jsonl", "--out", "rm", .. Tiny]);
        Assert.That(again.ExitCode, Is.EqualTo(2));
        Assert.That(again.Stderr, Does.Contain("pass --force"));
    }

    [Test]
    public void TrainClassifier_ThenScore_JsonProgress()
    {
        var train = CliRunner.Run(dir, ["train-classifier", "--data", "labels.csv", "--out", "clf", "--json", .. Tiny]);
        Assert.That(train.ExitCode, Is.EqualTo(0), train.Stderr);
        using (var result = JsonDocument.Parse(train.Stdout))
        {
            Assert.That(result.RootElement.GetProperty("labels").GetArrayLength(), Is.EqualTo(2));
            Assert.That(result.RootElement.GetProperty("last_epoch").GetProperty("epoch").GetInt32(), Is.EqualTo(5));
        }

        Assert.That(train.Stderr.Split('\n').Count(l => l.StartsWith("train-classifier epoch ", StringComparison.Ordinal)), Is.EqualTo(5), "one progress line per epoch");
        var score = CliRunner.Run(dir, "score", "--model", "clf", "--input", "responses.jsonl", "--out", "scores.jsonl", "--label", "polite");
        Assert.That(score.ExitCode, Is.EqualTo(0), score.Stderr);
        var rows = File.ReadAllLines(Path.Combine(dir, "scores.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.That(rows[0].GetProperty("score").GetDouble(), Is.GreaterThan(rows[1].GetProperty("score").GetDouble()));
        Assert.That(rows[1].GetProperty("probabilities").GetProperty("rude").GetDouble(), Is.GreaterThan(0.5));
        var badLabel = CliRunner.Run(dir, "score", "--model", "clf", "--input", "responses.jsonl", "--out", "s2.jsonl", "--label", "nice");
        Assert.That(badLabel.ExitCode, Is.EqualTo(2));
        Assert.That(badLabel.Stderr, Does.Contain("'nice'"));
    }

    [Test]
    public void BadInputs_ExitTwo_WithTheReason()
    {
        File.WriteAllText(Path.Combine(dir, "bad.jsonl"), "{\"prompt\": \"p\", \"chosen\": \"a\"}\n");
        var bad = CliRunner.Run(dir, "train-reward", "--pairs", "bad.jsonl", "--out", "rm");
        Assert.That(bad.ExitCode, Is.EqualTo(2));
        Assert.That(bad.Stderr, Does.Contain("bad.jsonl:1").And.Contain("\"rejected\""));
        var tok = CliRunner.Run(dir, "train-reward", "--pairs", "pairs.jsonl", "--out", "rm", "--tokenizer", "nope");
        Assert.That(tok.ExitCode, Is.EqualTo(2));
        Assert.That(tok.Stderr, Does.Contain("'nope'"));
        var frac = CliRunner.Run(dir, "train-classifier", "--data", "labels.csv", "--out", "c", "--eval-fraction", "2");
        Assert.That(frac.ExitCode, Is.EqualTo(2));
        Assert.That(frac.Stderr, Does.Contain("--eval-fraction must be in [0, 1) (got 2)"));
        var col = CliRunner.Run(dir, "train-classifier", "--data", "labels.csv", "--out", "c", "--label-column", "class");
        Assert.That(col.ExitCode, Is.EqualTo(2));
        Assert.That(col.Stderr, Does.Contain("no column \"class\""));
        var score = CliRunner.Run(dir, "score", "--model", "nowhere", "--input", "responses.jsonl", "--out", "s.jsonl");
        Assert.That(score.ExitCode, Is.EqualTo(2));
        var missing = CliRunner.Run(dir, "train-reward", "--out", "rm");
        Assert.That(missing.ExitCode, Is.EqualTo(2));
    }

    private static readonly string[] OneEpoch = ["--layers", "1", "--dim", "16", "--heads", "2", "--max-length", "32", "--epochs", "1"];

    private static string[] Train(string command, string outDir) => command == "train-reward"
        ? ["train-reward", "--pairs", "pairs.jsonl", "--out", outDir, .. OneEpoch]
        : ["train-classifier", "--data", "labels.csv", "--out", outDir, .. OneEpoch];


    [TestCase("train-reward")]
    [TestCase("train-classifier")]
    public void ForcedRunThatFails_LeavesTheOldRunAsItWas(string command)
    {
        var first = CliRunner.Run(dir, Train(command, "run"));
        Assert.That(first.ExitCode, Is.EqualTo(0), first.Stderr);
        var before = FolderSnapshot.Of(Path.Combine(dir, "run"));

        // A learning rate this large makes the loss non-finite in the first epoch: the run fails after it started writing.
        var diverged = CliRunner.Run(dir, [.. Train(command, "run"), "--lr", "1e30", "--force"]);
        Assert.That(diverged.ExitCode, Is.EqualTo(1), diverged.Stderr);
        Assert.That(diverged.Stderr, Does.Contain("epoch 1: the training loss is").And.Contain("--lr"));
        Assert.That(FolderSnapshot.Of(Path.Combine(dir, "run")), Is.EqualTo(before), "the old run is untouched");
        Assert.That(Directory.GetFileSystemEntries(dir, ".run.*"), Is.Empty, "the failed run's staging folder is gone");
    }

    [Test]
    public void Force_ReplacesTheWholeFolder_AndClearsWhatAKilledRunLeft()
    {
        Directory.CreateDirectory(Path.Combine(dir, "rm", "old-adapter"));
        File.WriteAllText(Path.Combine(dir, "rm", "old-adapter", "adapter_config.json"), "{}");
        File.WriteAllText(Path.Combine(dir, "rm", "model.safetensors"), "not the new model");
        // What a run killed mid-way leaves: its staging folder, named with a process id that no longer runs.
        string killed = Path.Combine(dir, ".rm.staging-2147483646-0123");
        Directory.CreateDirectory(killed);
        File.WriteAllText(Path.Combine(killed, "metrics.jsonl"), "{\"epoch\": 1}\n");

        var forced = CliRunner.Run(dir, [.. Train("train-reward", "rm"), "--force"]);
        Assert.That(forced.ExitCode, Is.EqualTo(0), forced.Stderr);
        Assert.That(Directory.Exists(Path.Combine(dir, "rm", "old-adapter")), Is.False, "nothing of the old run is left");
        Assert.That(File.ReadAllLines(Path.Combine(dir, "rm", "metrics.jsonl")), Has.Length.EqualTo(1));
        Assert.That(new FileInfo(Path.Combine(dir, "rm", "model.safetensors")).Length, Is.GreaterThan(1000));
        Assert.That(Directory.GetFileSystemEntries(dir, ".rm.*"), Is.Empty, "the killed run's leftovers are cleared");
        var score = CliRunner.Run(dir, "score", "--model", "rm", "--input", "responses.jsonl", "--out", "scores.jsonl");
        Assert.That(score.ExitCode, Is.EqualTo(0), score.Stderr);
    }

    [TestCase("train-reward", "--epochs", "0", "--epochs must be positive (got 0)")]
    [TestCase("train-classifier", "--epochs", "0", "--epochs must be positive (got 0)")]
    [TestCase("train-classifier", "--batch-size", "0", "--batch-size must be positive (got 0)")]
    [TestCase("train-reward", "--lr", "NaN", "--lr must be positive and finite (got NaN)")]
    [TestCase("train-reward", "--max-length", "100000000", "--max-length 100000000 is too long for a fresh trunk")]
    [TestCase("train-reward", "--model", "small", "--max-length 32 exceeds the context of small (16 tokens)")]
    public void BadOptions_ExitTwo_NamingTheOption_BeforeAnythingIsWritten(string command, string option, string value, string expected)
    {
        var small = new Rlhf.Model.TransformerModel(Rlhf.Model.TransformerConfig.Gpt2(259, 16, 16, 1, 2));
        small.InitializeRandom(1, std: 0.5f);
        Rlhf.Checkpoints.ModelCheckpoint.SaveHf(small, Path.Combine(dir, "small"));
        var args = Train(command, "run").ToList();
        int at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = value;
        else args.AddRange([option, value]);

        var r = CliRunner.Run(dir, [.. args]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(expected));
        Assert.That(Directory.GetFileSystemEntries(dir, "*run*"), Is.Empty, "nothing written");
    }

    [Test]
    public void GenerateCompletions_SameSeedSameFile_FeedsRankings()
    {
        var model = new Rlhf.Model.TransformerModel(Rlhf.Model.TransformerConfig.Gpt2(259, 32, 16, 1, 2));
        model.InitializeRandom(1, std: 0.5f);
        Rlhf.Checkpoints.ModelCheckpoint.SaveHf(model, Path.Combine(dir, "policy"));
        File.WriteAllText(Path.Combine(dir, "prompts.jsonl"), "{\"prompt_id\": \"hot\", \"prompt\": \"My house is too hot.\"}\n{\"prompt\": \"Hi\"}\n");
        string[] args = ["generate-completions", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--k", "3", "--max-new-tokens", "8", "--seed", "4"];
        var one = CliRunner.Run(dir, [.. args, "--out", "c1.jsonl"]);
        Assert.That(one.ExitCode, Is.EqualTo(0), one.Stderr);
        var two = CliRunner.Run(dir, [.. args, "--out", "c2.jsonl"]);
        Assert.That(two.ExitCode, Is.EqualTo(0), two.Stderr);
        Assert.That(File.ReadAllText(Path.Combine(dir, "c2.jsonl")), Is.EqualTo(File.ReadAllText(Path.Combine(dir, "c1.jsonl"))));
        var sets = CompletionSets.Load(Path.Combine(dir, "c1.jsonl"));
        Assert.That(sets.Keys, Is.EquivalentTo(new[] { "hot", "p2" }));
        Assert.That(sets["hot"].Completions, Has.Count.EqualTo(3));
        var badK = CliRunner.Run(dir, [.. args, "--out", "c3.jsonl", "--k", "1"]);
        Assert.That(badK.ExitCode, Is.EqualTo(2));
        Assert.That(badK.Stderr, Does.Contain("--k"));
    }
}
