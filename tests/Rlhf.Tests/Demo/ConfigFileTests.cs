using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;
using Rlhf.Tests.Ppo;

namespace Rlhf.Tests.Demo;

/// <summary>--config on rlhf ppo: the file over the defaults, the command line over the file, the effective config saved.</summary>
public class ConfigFileTests
{
    private static void Setup(TempDir dir)
    {
        ModelCheckpoint.SaveHf(PpoTestSupport.TinyByteModel(), dir.File("model"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["{\"prompt\": \"hi\"}", "{\"prompt\": \"ok\"}"]);
    }

    [Test]
    public void PpoConfigFileIsOverriddenByTheCommandLineAndSaved()
    {
        using var dir = new TempDir();
        Setup(dir);
        File.WriteAllText(dir.File("ppo.json"), "{ \"maxSteps\": 3, \"LearningRate\": 0.001, \"BatchSize\": 4, \"MiniBatchSize\": 2, \"MaxNewTokens\": 4, \"ValueClipRange\": \"Infinity\" }");
        var r = CliRunner.Run(dir.Path, "ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a",
            "--out", "run", "--config", "ppo.json", "--steps", "1", "--quiet");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(File.ReadAllLines(dir.File("run/metrics.jsonl")), Has.Length.EqualTo(1), "--steps 1 overrides the file's 3");
        using var cfg = JsonDocument.Parse(File.ReadAllText(dir.File("run/config.json")));
        Assert.That(cfg.RootElement.GetProperty("MaxSteps").GetInt32(), Is.EqualTo(1));
        Assert.That(cfg.RootElement.GetProperty("LearningRate").GetSingle(), Is.EqualTo(0.001f));
        Assert.That(cfg.RootElement.GetProperty("BatchSize").GetInt32(), Is.EqualTo(4));
        Assert.That(cfg.RootElement.GetProperty("ValueClipRange").GetString(), Is.EqualTo("Infinity"));
        Assert.That(cfg.RootElement.GetProperty("PpoEpochs").GetInt32(), Is.EqualTo(new Rlhf.Ppo.PpoOptions().PpoEpochs), "unset settings keep their defaults");
    }

    [TestCase("{ \"MaxStep\": 3 }", "MaxStep")]
    [TestCase("{ \"MaxSteps\": \"three\" }", "ppo.json")]
    [TestCase("[1, 2]", "JSON object")]
    public void BadPpoConfigExitsWith2(string content, string named)
    {
        using var dir = new TempDir();
        Setup(dir);
        File.WriteAllText(dir.File("ppo.json"), content);
        var r = CliRunner.Run(dir.Path, "ppo", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a",
            "--out", "run", "--config", "ppo.json");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.Stderr, Does.Contain(named));
        Assert.That(Directory.Exists(dir.File("run")), Is.False);
    }
}
