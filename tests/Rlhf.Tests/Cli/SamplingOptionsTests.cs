using Rlhf.Checkpoints;
using Rlhf.Model;
using Rlhf.Tests.Ppo;

namespace Rlhf.Tests.Cli;

/// <summary>
/// Numeric options of the sampling commands are checked before any work: a non-finite or out-of-range value, or one the
/// model's context or vocabulary cannot serve, is exit 2 naming the option, and nothing is written.
/// </summary>
public class SamplingOptionsTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cli-sampling-").FullName;
        HotHouseFeedback.Write(dir);
        ModelCheckpoint.SaveHf(PpoTestSupport.TinyByteModel(), Path.Combine(dir, "model")); // context 16
        File.WriteAllLines(Path.Combine(dir, "prompts.jsonl"), ["{\"prompt\": \"hi\"}"]);
        File.WriteAllText(Path.Combine(dir, "redteam.csv"), "goal\nTell me a secret\n");
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private static void AssertBadOption(CliRunner.Result r, string option)
    {
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.Stderr, Does.Contain(option).And.Not.Contain("Parameter"));
    }

    [TestCase("--temperature", "Infinity")]
    [TestCase("--temperature", "NaN")]
    [TestCase("--max-new-tokens", "100000")] // beyond the whole context
    [TestCase("--max-new-tokens", "14")] // "hi" with its BOS is 3 tokens: 17 > 16
    public void GenerateCompletions_BadOption_ExitsWith2_NothingWritten(string option, string value)
    {
        var r = CliRunner.Run(dir, "generate-completions", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--out", "g.jsonl", option, value);
        AssertBadOption(r, option);
        Assert.That(File.Exists(Path.Combine(dir, "g.jsonl")), Is.False);
    }

    [Test]
    public void GenerateCompletions_TokenizerSmallerThanTheModel_ExitsWith2()
    {
        var wide = new TransformerModel(TransformerConfig.Gpt2(vocabSize: 300, contextLength: 16, modelDim: 16, layerCount: 1, headCount: 2));
        wide.InitializeRandom(1, std: 0.3f);
        ModelCheckpoint.SaveHf(wide, Path.Combine(dir, "wide"));
        var r = CliRunner.Run(dir, "generate-completions", "--model", "wide", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--out", "g.jsonl", "--max-new-tokens", "4");
        AssertBadOption(r, "--tokenizer");
        Assert.That(r.Stderr, Does.Contain("259").And.Contain("300"));
        Assert.That(File.Exists(Path.Combine(dir, "g.jsonl")), Is.False);
    }

    [Test]
    public void GenerateCompletions_TokenizerFileCutOnATokenBoundary_ExitsWith2_NamingTheFile()
    {
        byte[] whole = Tokenizers.Llama2cTokenizerTests.TokFile([.. Enumerable.Range(0, 7).Select(i => ($"t{i}", 0f))]);
        File.WriteAllBytes(Path.Combine(dir, "tok259.bin"), whole);
        var r = CliRunner.Run(dir, "generate-completions", "--model", "model", "--tokenizer", "tok259.bin", "--prompts", "prompts.jsonl", "--out", "g.jsonl", "--max-new-tokens", "4");
        AssertBadOption(r, "--tokenizer");
        Assert.That(r.Stderr, Does.Contain("tok259.bin").And.Contain("7 tokens").And.Contain("truncated").And.Contain("259"));
        Assert.That(File.Exists(Path.Combine(dir, "g.jsonl")), Is.False);
    }

    [TestCase("NaN")]
    [TestCase("-Infinity")]
    public void Agreement_NonFiniteFlagBelow_ExitsWith2(string value)
    {
        CliRunner.Run(dir, "rankings", "--completions", "completions.jsonl", "--input", "labels.csv", "--out", "r.jsonl");
        AssertBadOption(CliRunner.Run(dir, "agreement", "--completions", "completions.jsonl", "--rankings", "r.jsonl", "--flag-below", value), "--flag-below");
    }

    [TestCase("--max-new-tokens", "100000")]
    [TestCase("--temperature", "Infinity")]
    public void CaiRevise_BadOption_ExitsWith2_NothingWritten(string option, string value)
    {
        var r = CliRunner.Run(dir, "cai", "revise", "--model", "model", "--tokenizer", "bytes", "--prompts", "redteam.csv", "--out", "rev", option, value);
        AssertBadOption(r, option);
        Assert.That(Directory.Exists(Path.Combine(dir, "rev")), Is.False);
    }
}
