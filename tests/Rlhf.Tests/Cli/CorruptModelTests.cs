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
        var model = PpoTestSupport.TinyByteModel();
        var head = ScoreHead.Reward(model.Config.ModelDim);
        Array.Fill(head.Parameters, headValue);
        ScoredModelFiles.Save(path, model, head, "byte", new TokenRows(new ByteTokenizer(), 16, PaddingSide.Right), RewardModel.Kind, new JsonObject());
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
}
