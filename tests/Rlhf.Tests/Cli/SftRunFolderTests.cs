using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Tests.Cai;
using Rlhf.Tests.Support;

namespace Rlhf.Tests.Cli;

/// <summary>`rlhf sft`'s run folder: options checked before anything is written, and --force replacing the folder whole.</summary>
public class SftRunFolderTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-sft-run-").FullName;
        ModelCheckpoint.SaveHf(SftTests.TinyByteModel(1, context: 64), Path.Combine(dir, "tiny"));
        File.WriteAllLines(Path.Combine(dir, "sft.jsonl"), ["{\"prompt\": \"a\", \"response\": \"b\"}", "{\"prompt\": \"c\", \"response\": \"d\"}"]);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private static string[] Sft(string outDir, params string[] more) =>
        ["sft", "--model", "tiny", "--tokenizer", "bytes", "--data", "sft.jsonl", "--steps", "2", "--batch-size", "2", "--held-out", "0", "--out", outDir, .. more];


    [TestCase("--warmup-steps", "-1", "--warmup-steps must be >= 0, got -1")]
    [TestCase("--eval-every", "-1", "--eval-every must be >= 0, got -1")]
    [TestCase("--lora-alpha", "NaN", "--lora-alpha must be positive and finite, got NaN")]
    [TestCase("--lr", "Infinity", "--lr must be positive and finite, got Infinity")]
    [TestCase("--max-seq", "100000", "--max-seq 100000 exceeds the context of tiny (64 tokens)")]
    public void BadOption_ExitsTwoNamingIt_AndWritesNothing(string option, string value, string expected)
    {
        var fresh = CliRunner.Run(dir, Sft("new", option, value));
        Assert.That(fresh.ExitCode, Is.EqualTo(2), fresh.Stderr);
        Assert.That(fresh.Stderr, Does.Contain(expected));
        Assert.That(Directory.GetFileSystemEntries(dir, "*new*"), Is.Empty, "no folder for a run that never started");

        Directory.CreateDirectory(Path.Combine(dir, "old"));
        File.WriteAllText(Path.Combine(dir, "old", "config.json"), "{\"steps\": 7}");
        var forced = CliRunner.Run(dir, Sft("old", option, value, "--force"));
        Assert.That(forced.ExitCode, Is.EqualTo(2), forced.Stderr);
        Assert.That(FolderSnapshot.Of(Path.Combine(dir, "old")), Is.EqualTo(new Dictionary<string, string> { ["config.json"] = Convert.ToBase64String("{\"steps\": 7}"u8.ToArray()) }));
    }

    [Test]
    public void Force_ReplacesTheWholeFolder_AndReportsWhereTheModelIs()
    {
        var lora = CliRunner.Run(dir, Sft("run", "--lora-rank", "2"));
        Assert.That(lora.ExitCode, Is.EqualTo(0), lora.Stderr);
        Assert.That(Directory.Exists(Path.Combine(dir, "run", "adapter")), Is.True);

        var full = CliRunner.Run(dir, Sft("run", "--force", "--json"));
        Assert.That(full.ExitCode, Is.EqualTo(0), full.Stderr);
        Assert.That(Directory.GetFileSystemEntries(Path.Combine(dir, "run")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "config.json", "metrics.jsonl", "model" }), "the LoRA run's adapter/ is gone");
        using (var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run", "config.json"))))
            Assert.That(cfg.RootElement.GetProperty("lora_rank").GetInt32(), Is.EqualTo(0));
        using (var result = JsonDocument.Parse(full.Stdout))
            Assert.That(result.RootElement.GetProperty("ModelDirectory").GetString(), Is.EqualTo(Path.Combine(dir, "run", "model")));
        Assert.That(Directory.GetFileSystemEntries(dir, ".run.*"), Is.Empty);
    }
}
