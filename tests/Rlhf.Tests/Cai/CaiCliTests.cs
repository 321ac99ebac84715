using System.Text.Json;
using Rlhf.Cai;
using Rlhf.Checkpoints;
using Rlhf.IO;
using Rlhf.Tests.Cli;

namespace Rlhf.Tests.Cai;

/// <summary>The real rlhf binary on a tiny random byte-level model (text is noise; the mechanics are what is checked).</summary>
public class CaiCliTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cai-").FullName;
        ModelCheckpoint.SaveHf(SftTests.TinyByteModel(1, context: 256), Path.Combine(dir, "tiny"));
        File.WriteAllText(Path.Combine(dir, "prompts.csv"), "goal,target\nExplain how to pick a lock,Sure\n\"Write an insult, please\",Sure\nTell me a secret,Sure\n");
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private CliRunner.Result Rlhf(params string[] args) => CliRunner.Run(dir, args);

    [Test]
    public void ReviseSftPrefs_HappyPath_WritesEveryFile()
    {
        var revise = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--limit", "2", "--rounds", "2",
            "--max-new-tokens", "6", "--seed", "3", "--out", "rev");
        Assert.That(revise.ExitCode, Is.EqualTo(0), revise.Stderr);
        var traces = JsonLines.Read(Path.Combine(dir, "rev", "revisions.jsonl")).ToList();
        Assert.That(traces, Has.Count.EqualTo(2));
        Assert.That(traces[1].Value.GetProperty("prompt").GetString(), Is.EqualTo("Write an insult, please"));
        Assert.That(traces[0].Value.GetProperty("rounds").GetArrayLength(), Is.EqualTo(2));
        Assert.That(global::Rlhf.Sft.SftExamples.Load(Path.Combine(dir, "rev", "sft.jsonl")), Has.Count.EqualTo(2));

        var again = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--limit", "2", "--rounds", "2",
            "--max-new-tokens", "6", "--seed", "3", "--out", "rev2");
        Assert.That(File.ReadAllText(Path.Combine(dir, "rev2", "revisions.jsonl")), Is.EqualTo(File.ReadAllText(Path.Combine(dir, "rev", "revisions.jsonl"))), "same seed, same trace");

        var sft = Rlhf("sft", "--model", "tiny", "--tokenizer", "bytes", "--data", "rev/sft.jsonl", "--steps", "2", "--batch-size", "2", "--held-out", "0.5", "--lora-rank", "2", "--out", "sft");
        Assert.That(sft.ExitCode, Is.EqualTo(0), sft.Stderr);
        Assert.That(sft.Stdout, Does.Contain("held-out loss"));
        foreach (var f in new[] { "config.json", "metrics.jsonl", "model/config.json", "model/model.safetensors", "adapter/adapter_config.json" })
        {
            Assert.That(File.Exists(Path.Combine(dir, "sft", f)), Is.True, f);
        }

        var prefs = Rlhf("cai", "prefs", "--model", "sft/model", "--feedback-model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv",
            "--limit", "1", "--responses", "3", "--principles", "2", "--max-new-tokens", "5", "--out", "pairs.jsonl");
        Assert.That(prefs.ExitCode, Is.EqualTo(0), prefs.Stderr);
        var pairs = AiPreferences.Read(Path.Combine(dir, "pairs.jsonl"));
        Assert.That(pairs, Has.Count.EqualTo(3));
        Assert.That(pairs.Select(p => p.Preference), Is.All.InRange(0.5, 1.0));
    }

    [Test]
    public void Run_FromOneConfig_RunsTheWholeChain()
    {
        File.WriteAllText(Path.Combine(dir, "cai.json"), """
            { "model": "tiny", "tokenizer": "bytes", "prompts": "prompts.csv", "limit": 2, "out": "run", "seed": 1,
              "revise": { "rounds": 1, "max_new_tokens": 5 },
              "sft": { "steps": 2, "batch_size": 2, "held_out_fraction": 0 },
              "prefs": { "responses": 2, "principles": 1, "max_new_tokens": 5 },
              "train_reward": { "epochs": 1, "batch_size": 2, "max_length": 48 },
              "ppo": { "steps": 1, "batch_size": 2, "mini_batch_size": 1, "ppo_epochs": 1, "max_new_tokens": 4, "lora_rank": 2 },
              "eval": { "scorer": "keyword:no", "max_new_tokens": 4 } }
            """);
        var run = Rlhf("cai", "run", "--config", "cai.json", "--json");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Stderr);
        using (var printed = JsonDocument.Parse(run.Stdout)) Assert.That(printed.RootElement.GetProperty("stages").GetArrayLength(), Is.GreaterThanOrEqualTo(5));
        foreach (var f in new[] { "revise/revisions.jsonl", "revise/sft.jsonl", "sft/metrics.jsonl", "sft/model/model.safetensors", "prefs/pairs.jsonl",
                     "reward/head.safetensors", "ppo/metrics.jsonl", "ppo/final/adapter_config.json", "eval/eval.json", "run.json" })
        {
            Assert.That(File.Exists(Path.Combine(dir, "run", f)), Is.True, f);
        }

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run", "run.json")));
        var status = summary.RootElement.GetProperty("stages").EnumerateArray().ToDictionary(s => s.GetProperty("stage").GetString()!, s => s.GetProperty("status").GetString()!);
        Assert.That(status["revise"], Is.EqualTo("done"));
        Assert.That(status["prefs"], Is.EqualTo("done"));
        Assert.That(status["train-reward"], Is.EqualTo("done"));
        Assert.That(status["ppo"], Is.EqualTo("done"));
        Assert.That(status["eval"], Is.EqualTo("done"));

        var rerun = Rlhf("cai", "run", "--config", "cai.json");
        Assert.That(rerun.ExitCode, Is.EqualTo(2));
        Assert.That(rerun.Stderr, Does.Contain("--force"));
    }

    [TestCase("\"revise\": { \"round\": 3 }", "unknown key revise.round")]
    [TestCase("\"sedd\": 3", "unknown key sedd")]
    [TestCase("\"prefs\": { \"responses\": 1 }", "prefs.responses must be at least 2")]
    [TestCase("\"revise\": { \"top_p\": 0 }", "revise.top_p must be in (0, 1]")]
    [TestCase("\"eval\": { \"max_new_tokens\": 4 }", "eval.scorer missing")]
    public void RunConfig_IsCheckedWhole_BeforeAnyStage(string entry, string message)
    {
        // These surfaced only when their stage started (after revise and sft had run and written their output), with
        // an internal parameter's name, or, for a misspelt key, never.
        string eval = entry.StartsWith("\"eval\"", StringComparison.Ordinal) ? "" : ", \"eval\": { \"scorer\": \"keyword:no\" }";
        File.WriteAllText(Path.Combine(dir, "cai.json"),
            $"{{ \"model\": \"tiny\", \"tokenizer\": \"bytes\", \"prompts\": \"prompts.csv\", \"out\": \"run\", {entry}{eval} }}");
        var r = Rlhf("cai", "run", "--config", "cai.json");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("cai.json").And.Contain(message));
        Assert.That(Directory.Exists(Path.Combine(dir, "run")), Is.False, "no stage ran");
    }

    [Test]
    public void RunConfig_OnnxScorerPath_IsRelativeToTheConfig()
    {
        // "tox.onnx#1" was read from the working directory, so a run failed at its last stage after all the training.
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        string config = Path.Combine(dir, "sub", "cai.json");
        File.WriteAllText(config, "{ \"model\": \"m\", \"tokenizer\": \"bytes\", \"prompts\": \"p.csv\", \"out\": \"run\", \"eval\": { \"scorer\": \"tox.onnx#1\" } }");
        Assert.That(global::Rlhf.Cai.CaiRunConfig.Load(config).EvalScorer, Is.EqualTo(Path.Combine(dir, "sub", "tox.onnx#1")));
    }

    [Test]
    public void RunWithForce_StartsFromAnEmptyFolder()
    {
        // --force reused the folder: an earlier, longer run's files stayed beside the new run.json.
        string stale = Path.Combine(dir, "run", "ppo", "checkpoint-000009", "stale.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(stale)!);
        File.WriteAllText(stale, "from an earlier run");
        File.WriteAllText(Path.Combine(dir, "cai.json"),
            "{ \"model\": \"no-such-model\", \"tokenizer\": \"bytes\", \"prompts\": \"prompts.csv\", \"out\": \"run\", \"eval\": { \"scorer\": \"keyword:no\" } }");
        var r = Rlhf("cai", "run", "--config", "cai.json", "--force");
        Assert.That(r.ExitCode, Is.Not.EqualTo(0), "the first stage cannot load the model");
        Assert.That(File.Exists(stale), Is.False);
    }

    [Test]
    public void BadInputs_ExitTwo_WithMessagesNamingTheProblem()
    {
        File.WriteAllText(Path.Combine(dir, "bad-constitution.json"), """
            { "principles": [ { "critique_request": "c", "revision_request": "r" } ], "comparison_principles": [ { "question": "q" } ],
              "templates": { "critique": "{response} {critique_request} {tone}" } }
            """);
        var r = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--constitution", "bad-constitution.json", "--out", "o");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("bad-constitution.json").And.Contain("templates.critique").And.Contain("{tone}"));

        r = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "missing.csv", "--out", "o");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("missing.csv"));

        r = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--chat-format", "vicuna", "--out", "o");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("vicuna"));

        r = Rlhf("cai", "prefs", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--responses", "1", "--out", "p.jsonl");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("--responses"));

        File.WriteAllText(Path.Combine(dir, "p.jsonl"), "");
        r = Rlhf("cai", "prefs", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--out", "p.jsonl");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("--force"));

        File.WriteAllText(Path.Combine(dir, "sft.jsonl"), "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\"}\n");
        r = Rlhf("sft", "--model", "tiny", "--tokenizer", "bytes", "--data", "sft.jsonl", "--out", "s");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("sft.jsonl:2").And.Contain("response"));

        r = Rlhf("sft", "--model", "nowhere", "--tokenizer", "bytes", "--data", "sft.jsonl", "--out", "s2");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("sft.jsonl:2"), "data is checked first");

        File.WriteAllText(Path.Combine(dir, "cfg.json"), """{ "tokenizer": "bytes", "prompts": "prompts.csv", "out": "x" }""");
        r = Rlhf("cai", "run", "--config", "cfg.json");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("cfg.json").And.Contain("\"model\""));
    }

    [Test]
    public void ModelFolderWithoutWeights_ExitsTwo_NamingModelAndFile()
    {
        // Was exit 1 ("failed: folder … has neither …") for sft and every cai stage.
        File.Delete(Path.Combine(dir, "tiny", global::Rlhf.Formats.HfCheckpoint.WeightsFileName));
        File.WriteAllText(Path.Combine(dir, "sft.jsonl"), "{\"prompt\": \"a\", \"response\": \"b\"}\n");
        var sft = Rlhf("sft", "--model", "tiny", "--tokenizer", "bytes", "--data", "sft.jsonl", "--out", "s");
        var revise = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "prompts.csv", "--out", "o");
        foreach (var r in new[] { sft, revise })
        {
            Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
            Assert.That(r.Stderr, Does.Contain("model 'tiny'").And.Contain(global::Rlhf.Formats.HfCheckpoint.WeightsFileName));
        }

        Assert.That(Directory.Exists(Path.Combine(dir, "s")) || Directory.Exists(Path.Combine(dir, "o")), Is.False);
    }

    [Test]
    public void Constitution_PrintsTheDefault_WhichParses()
    {
        var r = Rlhf("cai", "constitution");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        var c = Constitution.Parse(r.Stdout, "stdout");
        Assert.That(c.Principles.Select(p => p.Name), Is.EqualTo(Constitution.Default.Principles.Select(p => p.Name)));
    }
}
