using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tests.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cli;

/// <summary>A damaged, missing or wrong checkpoint is bad input: exit 2 with a message naming the file (and tensor), nothing written.</summary>
public class CorruptModelTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cli-corrupt-").FullName;
        File.WriteAllText(Path.Combine(dir, "responses.jsonl"), "{\"prompt\": \"p\", \"response\": \"Thank you.\"}\n");
        File.WriteAllLines(Path.Combine(dir, "prompts.jsonl"), ["{\"prompt\": \"hi\"}"]);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    /// <summary>A reward-model folder as train-reward writes it, from a tiny random trunk; <paramref name="headValue"/> fills the head.</summary>
    private string SaveRewardModel(string name, float headValue = 0.1f)
    {
        string path = Path.Combine(dir, name);
        PpoTestSupport.SaveTinyRewardModel(path, headValue);
        return path;
    }

    private CliRunner.Result Score(string model) => CliRunner.Run(dir, "score", "--model", model, "--input", "responses.jsonl", "--out", "s.jsonl");

    [Test]
    public void Score_GoodModel_Works() // the fixture itself is sound: the failures below come from the damage
    {
        SaveRewardModel("rm");
        var r = Score("rm");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
    }

    [Test]
    public void Score_TruncatedWeights_ExitsWith2_NamingTheFile()
    {
        string weights = Path.Combine(SaveRewardModel("rm"), HfCheckpoint.WeightsFileName);
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        var r = Score("rm");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(HfCheckpoint.WeightsFileName));
        Assert.That(File.Exists(Path.Combine(dir, "s.jsonl")), Is.False);
    }

    [Test]
    public void Score_MissingWeights_ExitsWith2_NamingModelAndFile()
    {
        File.Delete(Path.Combine(SaveRewardModel("rm"), HfCheckpoint.WeightsFileName));
        var r = Score("rm");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("--model").And.Contain(HfCheckpoint.WeightsFileName));
    }

    [Test]
    public void Score_NanHeadWeights_ExitsWith2_NamingTheTensor()
    {
        SaveRewardModel("rm", float.NaN);
        var r = Score("rm");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(ScoredModelFiles.HeadFileName).And.Contain("score.weight").And.Contain("NaN"));
        Assert.That(File.Exists(Path.Combine(dir, "s.jsonl")), Is.False);
    }

    [TestCase("n_layer", 2147483647)] // crashed with "Out of memory." and SIGABRT (exit 134)
    [TestCase("n_layer", 1000000)]
    [TestCase("n_positions", 100000000)]
    public void Score_ConfigSizeTheWeightsDoNotBack_ExitsWith2_NamingFileAndField(string field, int value)
    {
        string config = Path.Combine(SaveRewardModel("rm"), HfCheckpoint.ConfigFileName);
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json[field] = value;
        File.WriteAllText(config, json.ToJsonString());
        var r = Score("rm");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(HfCheckpoint.ConfigFileName).And.Contain(field));
        Assert.That(File.Exists(Path.Combine(dir, "s.jsonl")), Is.False);
    }

    [Test]
    public void Score_HeadConfigMissingMaxLength_ExitsWith2_NamingFileAndField() // was "Object reference not set", exit 1
    {
        string config = Path.Combine(SaveRewardModel("rm"), ScoredModelFiles.ConfigFileName);
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json.Remove("max_length");
        File.WriteAllText(config, json.ToJsonString());
        var r = Score("rm");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(ScoredModelFiles.ConfigFileName).And.Contain("max_length"));
    }

    /// <summary>A tiny byte-vocabulary GPT-2 folder whose config.json eos_token_id is <paramref name="eos"/> (JSON text).</summary>
    private void SaveModelWithEos(string name, string eos)
    {
        string path = Path.Combine(dir, name);
        var model = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 16, 1, 2));
        model.InitializeRandom(1, std: 0.5f);
        ModelCheckpoint.SaveHf(model, path);
        string config = Path.Combine(path, HfCheckpoint.ConfigFileName);
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["eos_token_id"] = JsonNode.Parse(eos);
        File.WriteAllText(config, json.ToJsonString());
    }

    [TestCase("[]", "field eos_token_id is [], expected an integer or a non-empty list of integers")]
    [TestCase("[257, \"eos\"]", "field eos_token_id is [257,\"eos\"]: element 1 is \"eos\", expected an integer")]
    [TestCase("[257, -4]", "eos_token_id[1] = -4 is outside the vocabulary [0, 259)")]
    public void GenerateCompletions_BadEosList_ExitsWith2_NamingFileFieldAndValue(string eos, string message)
    {
        SaveModelWithEos("policy", eos);
        var r = CliRunner.Run(dir, "generate-completions", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--out", "g.jsonl");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain($"--model: file {Path.Combine("policy", HfCheckpoint.ConfigFileName)}: {message}"));
        Assert.That(File.Exists(Path.Combine(dir, "g.jsonl")), Is.False);
    }

    [Test]
    public void GenerateCompletions_EosList_EndsCompletionsAtAnyListedId()
    {
        // Every id but the byte tokenizer's EOS is listed: each completion stops after one token, left out of the text.
        SaveModelWithEos("policy", $"[{string.Join(", ", Enumerable.Range(0, ByteTokenizer.Size).Where(t => t != ByteTokenizer.Eos))}]");
        var r = CliRunner.Run(dir, "generate-completions", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--out", "g.jsonl", "--k", "3", "--max-new-tokens", "8");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        var sets = Rlhf.Feedback.CompletionSets.Load(Path.Combine(dir, "g.jsonl"));
        Assert.That(sets.Values.SelectMany(s => s.Completions).Select(c => c.Text), Is.All.Empty);
    }

    [Test]
    public void GenerateCompletions_ModelIsNotACheckpoint_ExitsWith2_NamingIt()
    {
        // A small file that is no llama2.c checkpoint (like a tokenizer passed as --model): its "header" is nonsense.
        File.WriteAllBytes(Path.Combine(dir, "tok.bin"), [.. BitConverter.GetBytes(8), .. new byte[60]]);
        var r = CliRunner.Run(dir, "generate-completions", "--model", "tok.bin", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--out", "g.jsonl");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("--model").And.Contain("tok.bin"));
        Assert.That(File.Exists(Path.Combine(dir, "g.jsonl")), Is.False);
    }

    [TestCase("train-reward")]
    [TestCase("train-classifier")]
    public void TrainHead_TrunkFolderWithoutWeights_ExitsWith2_NamingModelAndFile(string command)
    {
        // Was exit 1 ("failed: folder … has neither …"), while score and generate-completions said exit 2 for it.
        File.Delete(Path.Combine(SaveRewardModel("trunk"), HfCheckpoint.WeightsFileName));
        File.WriteAllText(Path.Combine(dir, "pairs.jsonl"), "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        File.WriteAllText(Path.Combine(dir, "texts.csv"), "text,label\nhello,ok\nyou fool,toxic\n");
        string[] data = command == "train-reward" ? ["--pairs", "pairs.jsonl"] : ["--data", "texts.csv"];
        var r = CliRunner.Run(dir, [command, "--model", "trunk", "--tokenizer", "byte", .. data, "--out", "out"]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("--model").And.Contain(HfCheckpoint.WeightsFileName));
        Assert.That(Directory.Exists(Path.Combine(dir, "out")), Is.False);
    }

    [Test]
    public void PpoAndEval_RewardOrScorerFolderWithoutWeights_ExitWith2_NamingItAndTheFile()
    {
        // Was exit 1 ("failed: folder … has neither …").
        ModelCheckpoint.SaveHf(PpoTestSupport.TinyByteModel(), Path.Combine(dir, "policy"));
        File.Delete(Path.Combine(SaveRewardModel("rm"), HfCheckpoint.WeightsFileName));
        var ppo = CliRunner.Run(dir, "ppo", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "rm", "--out", "run", "--steps", "1");
        Assert.That(ppo.ExitCode, Is.EqualTo(2), ppo.Stderr);
        Assert.That(ppo.Stderr, Does.Contain("reward 'rm'").And.Contain(HfCheckpoint.WeightsFileName));
        string classifier = Path.Combine(dir, "clf");
        new Rlhf.Classification.ClassifierTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), "byte", ["ok", "toxic"], new Rlhf.Classification.ClassifierOptions { MaxLength = 16 }).Save(classifier);
        File.Delete(Path.Combine(classifier, HfCheckpoint.WeightsFileName));
        var eval = CliRunner.Run(dir, "eval", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--scorer", "clf#toxic", "--out", "eval");
        Assert.That(eval.ExitCode, Is.EqualTo(2), eval.Stderr);
        Assert.That(eval.Stderr, Does.Contain("scorer 'clf#toxic'").And.Contain(HfCheckpoint.WeightsFileName));
        Assert.That(Directory.Exists(Path.Combine(dir, "run")) || Directory.Exists(Path.Combine(dir, "eval")), Is.False);
    }
}
