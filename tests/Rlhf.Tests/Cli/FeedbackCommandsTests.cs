namespace Rlhf.Tests.Cli;

public class FeedbackCommandsTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cli-").FullName;
        HotHouseFeedback.Write(dir);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    [Test]
    public void RankingsAgreementPairs_HappyPath()
    {
        var import = CliRunner.Run(dir, "rankings", "--completions", "completions.jsonl", "--input", "labels.csv", "--out", "rankings.jsonl");
        Assert.That(import.ExitCode, Is.EqualTo(0), import.Stderr);
        Assert.That(import.Stdout, Does.Contain("9 row(s) accepted"));

        var agreement = CliRunner.Run(dir, "agreement", "--completions", "completions.jsonl", "--rankings", "rankings.jsonl", "--json");
        Assert.That(agreement.ExitCode, Is.EqualTo(0), agreement.Stderr);
        using var json = System.Text.Json.JsonDocument.Parse(agreement.Stdout);
        var flagged = json.RootElement.GetProperty("labelers").EnumerateArray()
            .Where(l => l.GetProperty("flagged").GetBoolean()).Select(l => l.GetProperty("labeler").GetString());
        Assert.That(flagged, Is.EqualTo(new[] { "l3" }));

        var pairs = CliRunner.Run(dir, "pairs", "--completions", "completions.jsonl", "--rankings", "rankings.jsonl", "--out", "pairs.jsonl");
        Assert.That(pairs.ExitCode, Is.EqualTo(0), pairs.Stderr);
        var lines = File.ReadAllLines(Path.Combine(dir, "pairs.jsonl"));
        Assert.That(lines, Has.Length.EqualTo(9));
        Assert.That(lines[0], Does.Contain("\"chosen_id\":\"b\",\"rejected_id\":\"a\",\"labeler\":\"l1\""));
    }

    [Test]
    public void ExistingOutput_IsKeptWithoutForce_AndReplacedWithIt()
    {
        string outPath = Path.Combine(dir, "rankings.jsonl");
        File.WriteAllText(outPath, "precious");
        var refused = CliRunner.Run(dir, "rankings", "--completions", "completions.jsonl", "--input", "labels.csv", "--out", "rankings.jsonl");
        Assert.That(refused.ExitCode, Is.EqualTo(2));
        Assert.That(refused.Stderr, Does.Contain("rankings.jsonl exists; pass --force"));
        Assert.That(File.ReadAllText(outPath), Is.EqualTo("precious"));

        var forced = CliRunner.Run(dir, "rankings", "--completions", "completions.jsonl", "--input", "labels.csv", "--out", "rankings.jsonl", "--force");
        Assert.That(forced.ExitCode, Is.EqualTo(0), forced.Stderr);
        Assert.That(File.ReadAllLines(outPath), Has.Length.EqualTo(3));
    }

    [Test]
    public void RejectedRows_AreListedWithFileAndLine_AndNothingIsWritten()
    {
        File.AppendAllLines(Path.Combine(dir, "labels.csv"), ["l4,hot,a,7"]);
        var result = CliRunner.Run(dir, "rankings", "--completions", "completions.jsonl", "--input", "labels.csv", "--out", "rankings.jsonl");
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Stderr, Does.Contain("labels.csv:11: rank \"7\" of completion \"a\" is outside 1..3"));
        Assert.That(File.Exists(Path.Combine(dir, "rankings.jsonl")), Is.False);
        Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(2), "no temporary or partial file is left behind");
    }

    [Test]
    public void BadJsonLine_MissingFile_AndUnknownOption_ExitWithTwo()
    {
        File.AppendAllText(Path.Combine(dir, "completions.jsonl"), "{oops\n");
        var badLine = CliRunner.Run(dir, "pairs", "--completions", "completions.jsonl", "--rankings", "x.jsonl", "--out", "p.jsonl");
        Assert.That(badLine.ExitCode, Is.EqualTo(2));
        Assert.That(badLine.Stderr, Does.Contain("completions.jsonl:2: not valid JSON"));

        var missing = CliRunner.Run(dir, "agreement", "--completions", "nope.jsonl", "--rankings", "x.jsonl");
        Assert.That(missing.ExitCode, Is.EqualTo(2));
        Assert.That(missing.Stderr, Does.Contain("nope.jsonl: file not found"));

        var unknown = CliRunner.Run(dir, "pairs", "--frobnicate");
        Assert.That(unknown.ExitCode, Is.EqualTo(2));
        Assert.That(unknown.Stderr, Does.Contain("--frobnicate"));
    }

    [Test]
    public void EmptyRankings_ExitWithTwo_NamingTheFile_NothingWritten()
    {
        File.WriteAllText(Path.Combine(dir, "empty.jsonl"), "");
        File.WriteAllText(Path.Combine(dir, "header.csv"), "labeler,prompt_id,completion_id,rank\n");
        var rankings = CliRunner.Run(dir, "rankings", "--completions", "completions.jsonl", "--input", "header.csv", "--out", "r.jsonl");
        Assert.That(rankings.ExitCode, Is.EqualTo(2), rankings.Stderr);
        Assert.That(rankings.Stderr, Does.Contain("header.csv: no rows"));
        var pairs = CliRunner.Run(dir, "pairs", "--completions", "completions.jsonl", "--rankings", "empty.jsonl", "--out", "p.jsonl");
        Assert.That(pairs.ExitCode, Is.EqualTo(2), pairs.Stderr);
        Assert.That(pairs.Stderr, Does.Contain("empty.jsonl: no rows"));
        Assert.That(File.Exists(Path.Combine(dir, "r.jsonl")) || File.Exists(Path.Combine(dir, "p.jsonl")), Is.False);
    }

    [Test]
    public void Help_ShowsDefaults()
    {
        var help = CliRunner.Run(dir, "pairs", "--help");
        Assert.That(help.ExitCode, Is.EqualTo(0));
        Assert.That(help.Stdout, Does.Contain("[default: labelers]"));
    }
}
