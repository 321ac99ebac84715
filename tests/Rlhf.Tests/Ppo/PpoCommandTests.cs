using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Ppo;

public class PpoCommandTests
{
    private static string Setup(TempDir dir)
    {
        ModelCheckpoint.SaveHf(PpoTestSupport.TinyByteModel(), dir.File("model"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["{\"prompt\": \"hi\"}", "{\"prompt\": \"ok\"}", "{\"prompt\": \"so\"}"]);
        return dir.Path;
    }

    [Test]
    public void PpoThenEvalBeforeAfter()
    {
        using var dir = new TempDir();
        Setup(dir);
        var ppo = CliRunner.Run(dir.Path, "ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a",
            "--out", "run", "--steps", "3", "--batch-size", "4", "--mini-batch-size", "2", "--max-new-tokens", "4", "--lr", "0.01", "--checkpoint-every", "2");
        Assert.That(ppo.ExitCode, Is.EqualTo(0), ppo.Stderr);
        Assert.That(ppo.Stderr, Does.Contain("ppo 3/3 score").And.Contain("tok/s").And.Contain("ETA"));
        Assert.That(ppo.Stdout, Does.StartWith("done: 3 iteration(s)"));
        Assert.That(File.ReadAllLines(dir.File("run/metrics.jsonl")), Has.Length.EqualTo(3));
        Assert.That(Directory.Exists(dir.File("run/checkpoint-000002")) && Directory.Exists(dir.File("run/checkpoint-000003")));
        using (var cfg = JsonDocument.Parse(File.ReadAllText(dir.File("run/config.json"))))
            Assert.That(cfg.RootElement.GetProperty("MaxSteps").GetInt32(), Is.EqualTo(3));

        var again = CliRunner.Run(dir.Path, "ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a", "--out", "run", "--steps", "3");
        Assert.That(again.ExitCode, Is.EqualTo(2), "an existing run directory needs --force or --resume");

        var eval = CliRunner.Run(dir.Path, "eval", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--adapter", "run/final",
            "--scorer", "keyword:a", "--reward", "keyword:a", "--max-new-tokens", "4", "--out", "eval", "--json");
        Assert.That(eval.ExitCode, Is.EqualTo(0), eval.Stderr);
        using var doc = JsonDocument.Parse(eval.Stdout);
        var results = doc.RootElement.GetProperty("results");
        Assert.That(results.GetArrayLength(), Is.EqualTo(2));
        Assert.That(results[0].GetProperty("MeanKl").GetDouble(), Is.EqualTo(0));
        Assert.That(results[1].GetProperty("MeanKl").GetDouble(), Is.Not.EqualTo(0), "the adapter moved the policy");
        Assert.That(File.ReadAllText(dir.File("eval/eval.md")), Does.Contain("| before |").And.Contain("| after |"));
    }

    [TestCase("--mini-batch-size", "9", "--mini-batch-size 9 exceeds --batch-size 4")]
    [TestCase("--vf-coef", "-1", "--vf-coef must be non-negative")]
    [TestCase("--steps", "0", "--steps must be positive")]
    [TestCase("--ratio-threshold", "0", "--ratio-threshold must be positive")]
    [TestCase("--ratio-threshold", "NaN", "--ratio-threshold must be positive")]
    [TestCase("--force", "--resume", "--resume continues the run in --out and --force replaces it")]
    [TestCase("--reward", "", "reward")]
    [TestCase("--tokenizer", "gpt2", "vocabulary")]
    public void BadInvocationsFailBeforeWork(string option, string value, string expected)
    {
        using var dir = new TempDir();
        Setup(dir);
        var args = new List<string> { "ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a", "--out", "run", "--batch-size", "4" };
        int at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = value;
        else args.AddRange([option, value]);
        var r = CliRunner.Run(dir.Path, [.. args]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.Stderr, Does.Contain(expected));
        Assert.That(Directory.Exists(dir.File("run")), Is.False, "no work started");
    }

    [Test]
    public void RatioThresholdIsAnOptionAndAConfigKey()
    {
        using var dir = new TempDir();
        Setup(dir);
        string[] run = ["ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a", "--steps", "1",
            "--batch-size", "2", "--mini-batch-size", "1", "--ppo-epochs", "1", "--max-new-tokens", "2"];
        // Below 1 every minibatch of a fresh rollout (mean ratio ≈ 1) is skipped.
        var low = CliRunner.Run(dir.Path, [.. run, "--out", "low", "--ratio-threshold", "0.5"]);
        Assert.That(low.ExitCode, Is.EqualTo(0), low.Stderr);
        Assert.That(low.Stderr, Does.Contain("skipped 2/2 minibatches"));
        Assert.That(Metric(dir.File("low"), "SkippedMinibatches"), Is.EqualTo(2));
        using (var cfg = JsonDocument.Parse(File.ReadAllText(dir.File("low/config.json"))))
            Assert.That(cfg.RootElement.GetProperty("RatioThreshold").GetSingle(), Is.EqualTo(0.5f));

        File.WriteAllText(dir.File("off.json"), "{ \"ratio_threshold\": \"Infinity\" }");
        var off = CliRunner.Run(dir.Path, [.. run, "--out", "off", "--config", "off.json"]);
        Assert.That(off.ExitCode, Is.EqualTo(0), off.Stderr);
        Assert.That(off.Stderr, Does.Not.Contain("skipped"));
        Assert.That(Metric(dir.File("off"), "SkippedMinibatches"), Is.EqualTo(0));
        using (var cfg = JsonDocument.Parse(File.ReadAllText(dir.File("off/config.json"))))
            Assert.That(cfg.RootElement.GetProperty("RatioThreshold").GetString(), Is.EqualTo("Infinity"));

        File.WriteAllText(dir.File("bad.json"), "{ \"RatioThreshold\": -1 }");
        var bad = CliRunner.Run(dir.Path, [.. run, "--out", "bad", "--config", "bad.json"]);
        Assert.That(bad.ExitCode, Is.EqualTo(2), bad.Stdout + bad.Stderr);
        Assert.That(bad.Stderr, Does.Contain("--ratio-threshold must be positive"));
        Assert.That(Directory.Exists(dir.File("bad")), Is.False, "no work started");
    }

    private static int Metric(string runDirectory, string name)
    {
        using var line = JsonDocument.Parse(File.ReadAllLines(Path.Combine(runDirectory, "metrics.jsonl")).Single());
        return line.RootElement.GetProperty(name).GetInt32();
    }

    [Test]
    public void Force_StartsTheRunFolderAfresh_SoResumeSeesOnlyThatRun()
    {
        using var dir = new TempDir();
        Setup(dir);
        string[] run = ["ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a", "--out", "run",
            "--batch-size", "2", "--mini-batch-size", "1", "--ppo-epochs", "1", "--max-new-tokens", "2", "--checkpoint-every", "1"];
        var first = CliRunner.Run(dir.Path, [.. run, "--steps", "2"]);
        Assert.That(first.ExitCode, Is.EqualTo(0), first.Stderr);
        File.WriteAllText(dir.File("run/notes.txt"), "left by the user in the old run");
        var badForce = CliRunner.Run(dir.Path, [.. run.Select(a => a == "byte" ? "gpt2" : a), "--steps", "1", "--force"]);
        Assert.That(badForce.ExitCode, Is.EqualTo(2), badForce.Stderr);
        Assert.That(badForce.Stderr, Does.Contain("vocabulary"));
        Assert.That(Directory.Exists(dir.File("run/checkpoint-000002")), Is.True, "a --force run that fails on its inputs keeps the old run");

        var forced = CliRunner.Run(dir.Path, [.. run, "--steps", "1", "--force"]);
        Assert.That(forced.ExitCode, Is.EqualTo(0), forced.Stderr);
        Assert.That(Directory.GetFileSystemEntries(dir.File("run")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "checkpoint-000001", "config.json", "final", "metrics.jsonl" }), "nothing of the old run is left");
        Assert.That(Directory.GetFileSystemEntries(dir.Path, ".run.*"), Is.Empty, "no aside folder left behind");

        var resumed = CliRunner.Run(dir.Path, [.. run, "--steps", "3", "--resume"]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.Stderr);
        var iterations = File.ReadAllLines(dir.File("run/metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("Iteration").GetInt32());
        Assert.That(iterations, Is.EqualTo(new[] { 1, 2, 3 }), "resumed from the forced run's checkpoint 1, not the old run's checkpoint 2");
    }
}
