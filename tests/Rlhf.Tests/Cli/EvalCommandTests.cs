using Rlhf.Checkpoints;
using Rlhf.Tests.Formats;
using Rlhf.Tests.Ppo;

namespace Rlhf.Tests.Cli;

/// <summary>rlhf eval's bad input: exit 2 naming the option, found before the first sample, and earlier results kept.</summary>
public class EvalCommandTests
{
    private static TempDir Setup()
    {
        var dir = new TempDir();
        ModelCheckpoint.SaveHf(PpoTestSupport.TinyByteModel(), dir.File("model"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["{\"prompt\": \"hi\"}", "{\"prompt\": \"ok\"}"]);
        return dir;
    }

    private static CliRunner.Result Eval(TempDir dir, params string[] extra) => CliRunner.Run(dir.Path,
        ["eval", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--scorer", "keyword:a", "--max-new-tokens", "2", .. extra]);

    [Test]
    public void ExistingResults_AreKeptWithoutForce_CheckedBeforeAnyWork_AndReplacedWithForce()
    {
        using var dir = Setup();
        Directory.CreateDirectory(dir.File("ev"));
        File.WriteAllText(dir.File("ev/eval.md"), "precious");

        // A missing model would fail the run later: the existing output is reported first.
        var refused = CliRunner.Run(dir.Path, "eval", "--model", "nowhere", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--scorer", "keyword:a", "--out", "ev");
        Assert.That(refused.ExitCode, Is.EqualTo(2), refused.Stderr);
        Assert.That(refused.Stderr, Does.Contain("--out").And.Contain("eval.md exists; pass --force"));
        Assert.That(File.ReadAllText(dir.File("ev/eval.md")), Is.EqualTo("precious"));

        var forced = Eval(dir, "--out", "ev", "--force");
        Assert.That(forced.ExitCode, Is.EqualTo(0), forced.Stderr);
        Assert.That(File.ReadAllText(dir.File("ev/eval.md")), Does.Contain("| before |"));
        Assert.That(Directory.GetFiles(dir.File("ev")).Select(Path.GetFileName), Is.EquivalentTo(new[] { "eval.md", "eval.json", "cli-config.json" }), "no temporary file is left");
    }

    [Test]
    public void OutIsAFile_ExitsWith2_EvenWithForce_BeforeAnyWork()
    {
        using var dir = Setup();
        File.WriteAllText(dir.File("ev"), "precious");
        var r = Eval(dir, "--out", "ev", "--force");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("--out").And.Contain("is a file"));
        Assert.That(r.Stderr, Does.Not.Contain("eval before"), "nothing was sampled");
        Assert.That(File.ReadAllText(dir.File("ev")), Is.EqualTo("precious"));
    }

    [TestCase("--temperature", "NaN")]
    [TestCase("--temperature", "-1")]
    [TestCase("--temperature", "Infinity")]
    [TestCase("--max-new-tokens", "0")]
    [TestCase("--max-new-tokens", "16")] // the tiny model's whole context: no room for the prompt
    public void BadSamplingOption_ExitsWith2_NamingIt(string option, string value)
    {
        using var dir = Setup();
        var r = CliRunner.Run(dir.Path, "eval", "--model", "model", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--scorer", "keyword:a", option, value);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(option).And.Not.Contain("Parameter"));
        Assert.That(r.Stderr, Does.Not.Contain("eval before"));
    }

    [Test]
    public void BadAdapter_ExitsWith2_NamingIt_BeforeTheBeforePass()
    {
        using var dir = Setup();
        Directory.CreateDirectory(dir.File("not-an-adapter"));
        foreach (string adapter in new[] { "nope", "not-an-adapter" })
        {
            var r = Eval(dir, "--adapter", adapter);
            Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
            Assert.That(r.Stderr, Does.Contain("--adapter").And.Contain(adapter));
            Assert.That(r.Stderr, Does.Not.Contain("eval before"), "the adapter is checked before the 'before' evaluation");
        }
    }
}
