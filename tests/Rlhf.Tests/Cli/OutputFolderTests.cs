namespace Rlhf.Tests.Cli;

/// <summary>--out naming an existing folder where a file is written: exit 2 naming --out before any work, with or without --force.</summary>
public class OutputFolderTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cli-outdir-").FullName;
        HotHouseFeedback.Write(dir);
        Directory.CreateDirectory(Path.Combine(dir, "taken"));
        File.WriteAllText(Path.Combine(dir, "taken", "keep.txt"), "precious");
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    // Inputs that would fail later (a missing model) show the folder is reported first.
    [TestCase("rankings", "--completions", "completions.jsonl", "--input", "labels.csv")]
    [TestCase("pairs", "--completions", "completions.jsonl", "--rankings", "labels.csv")]
    [TestCase("score", "--model", "nowhere", "--input", "completions.jsonl")]
    [TestCase("export-onnx", "--model", "nowhere")]
    public void OutIsAFolder_ExitsWith2_NamingOut(params string[] args)
    {
        foreach (string[] force in new[] { Array.Empty<string>(), ["--force"] })
        {
            var r = CliRunner.Run(dir, [.. args, "--out", "taken", .. force]);
            Assert.That(r.ExitCode, Is.EqualTo(2), $"{args[0]} {string.Join(' ', force)}: {r.Stderr}");
            Assert.That(r.Stderr, Does.Contain("--out").And.Contain("taken is a folder"));
            Assert.That(File.ReadAllText(Path.Combine(dir, "taken", "keep.txt")), Is.EqualTo("precious"));
        }
    }
}
