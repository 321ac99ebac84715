using Rlhf.Feedback;
using Rlhf.IO;

namespace Rlhf.Tests.Feedback;

public class RankingImporterTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder() => dir = Directory.CreateTempSubdirectory("rankings-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private string WriteFile(string name, params string[] lines)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Test]
    public void Jsonl_AcceptsValidRows_RejectsEachBadRowWithItsLine()
    {
        string path = WriteFile("r.jsonl",
            """{"labeler": "l1", "prompt_id": "hot", "ranks": {"a": 2, "b": 1, "c": 3}}""",
            """{"labeler": "l2", "prompt_id": "cold", "ranks": {"a": 1}}""",
            """{"labeler": "l2", "prompt_id": "hot", "ranks": {"a": 1, "b": 2, "zz": 3}}""",
            """{"labeler": "l2", "prompt_id": "hot", "ranks": {"a": 1, "b": 4, "c": 2}}""",
            """{"labeler": "l1", "prompt_id": "hot", "ranks": {"a": 1, "b": 2, "c": 3}}""",
            """{"labeler": "l3", "prompt_id": "hot", "ranks": {"a": 1, "b": 2}}""",
            """{"labeler": "l3", "prompt_id": "hot", "ranks": {"a": 1, "b": "F", "c": 1}}""",
            "{not json",
            "",
            """{"labeler": "l4", "prompt_id": "hot", "completion_id": "b", "thumb": "up"}""",
            """{"labeler": "l4", "prompt_id": "hot", "completion_id": "c", "thumb": "sideways"}""");
        var importer = new RankingImporter(TutorialExample.Sets);
        importer.Import(path);

        Assert.That(importer.Accepted.Select(r => r.Labeler), Is.EqualTo(new[] { "l1", "l3" }));
        Assert.That(importer.Accepted[1].Ranks, Is.EqualTo(new[] { Rank.Of(1), Rank.Failed, Rank.Of(1) }));
        Assert.That(importer.Thumbs, Has.Count.EqualTo(1));
        Assert.That(importer.Summary, Is.EqualTo("3 row(s) accepted (2 ranking(s), 1 thumb(s)), 7 rejected"));
        var rejected = importer.Rejected.Select(r => r.ToString()).ToArray();
        Assert.That(rejected, Has.Length.EqualTo(7));
        Assert.That(rejected[0], Does.StartWith($"{path}:2: ").And.Contain("unknown prompt \"cold\""));
        Assert.That(rejected[1], Does.StartWith($"{path}:3: ").And.Contain("unknown completion \"zz\""));
        Assert.That(rejected[2], Does.StartWith($"{path}:4: ").And.Contain("rank \"4\"").And.Contain("outside 1..3"));
        Assert.That(rejected[3], Does.StartWith($"{path}:5: ").And.Contain("already ranked prompt \"hot\""));
        Assert.That(rejected[4], Does.StartWith($"{path}:6: ").And.Contain("missing ranks for completion(s) c"));
        Assert.That(rejected[5], Does.StartWith($"{path}:8: ").And.Contain("not valid JSON"));
        Assert.That(rejected[6], Does.StartWith($"{path}:11: ").And.Contain("thumb must be up or down"));
    }

    [Test]
    public void Csv_GroupsRowsPerLabelerAndPrompt_AndReportsMissingAndDuplicateRows()
    {
        string path = WriteFile("r.csv",
            "labeler,prompt_id,completion_id,rank",
            "l1,hot,a,2",
            "l1,hot,b,1",
            "l2,hot,a,1",
            "l1,hot,c,3",
            "l2,hot,b,F",
            "l3,hot,a,1",
            "l3,hot,a,2",
            "l3,hot,b,2",
            "l3,hot,c,3",
            "\"l4\",hot,c,0");
        var importer = new RankingImporter(TutorialExample.Sets);
        importer.Import(path);

        Assert.That(importer.Accepted.Select(r => r.Labeler), Is.EqualTo(new[] { "l1", "l3" }));
        Assert.That(importer.Accepted[0].Ranks, Is.EqualTo(new[] { Rank.Of(2), Rank.Of(1), Rank.Of(3) }));
        var rejected = importer.Rejected.Select(r => r.ToString()).ToArray();
        Assert.That(rejected.Count(r => r.Contains("ranked completion \"a\" of prompt \"hot\" twice")), Is.EqualTo(1));
        Assert.That(rejected.Single(r => r.Contains("twice")), Does.StartWith($"{path}:8: "));
        Assert.That(rejected.Single(r => r.Contains("rank \"0\"")), Does.StartWith($"{path}:11: "));
        // l2's two rows both fail: its ranking misses completion c.
        Assert.That(rejected.Where(r => r.Contains("missing ranks for completion(s) c")).Select(r => r.Split(':')[1]), Is.EqualTo(new[] { "4", "6" }));
        Assert.That(importer.AcceptedRows + importer.Rejected.Count, Is.EqualTo(10), "every data row is accounted for");
    }

    [Test]
    public void Csv_WithAWrongHeader_NamesFileAndLine()
    {
        string path = WriteFile("bad.csv", "who,prompt,rank", "l1,hot,1");
        var e = Assert.Throws<InvalidInputException>(() => new RankingImporter(TutorialExample.Sets).Import(path));
        Assert.That(e!.Message, Does.StartWith($"{path}:1: header must be"));
    }

    [TestCase("empty.jsonl")]
    [TestCase("blank.jsonl", "", "  ")]
    [TestCase("header-only.csv", "labeler,prompt_id,completion_id,rank")]
    public void FileWithoutRows_IsBadInputNamingIt(string name, params string[] lines)
    {
        string path = WriteFile(name, lines);
        var e = Assert.Throws<InvalidInputException>(() => new RankingImporter(TutorialExample.Sets).Import(path));
        Assert.That(e!.Message, Does.StartWith($"{path}: no rows"));
    }

    [TestCase("""{"labeler": "", "prompt_id": "hot", "ranks": {"a": 2, "b": 1, "c": 3}}""", "empty labeler")]
    [TestCase("""{"labeler": "l1", "prompt_id": " ", "ranks": {"a": 2, "b": 1, "c": 3}}""", "empty prompt_id")]
    [TestCase("""{"labeler": "", "prompt_id": "hot", "completion_id": "a", "thumb": "up"}""", "empty labeler")]
    [TestCase("""{"labeler": "l2", "prompt_id": "hot", "ranks": {"a": 2, "b": 1, "a": 3}}""", "completion \"a\" is ranked twice (duplicate key in \"ranks\")")]
    public void Jsonl_EmptyLabelerOrId_IsRejectedWithItsLine(string row, string reason)
    {
        string path = WriteFile("r.jsonl", """{"labeler": "l1", "prompt_id": "hot", "ranks": {"a": 2, "b": 1, "c": 3}}""", row);
        var importer = new RankingImporter(TutorialExample.Sets);
        importer.Import(path);
        Assert.That(importer.Rejected.Select(r => r.ToString()), Is.EqualTo(new[] { $"{path}:2: {reason}" }));
    }

    [Test]
    public void DuplicateLabelerAcrossFiles_IsRejected()
    {
        string first = WriteFile("a.jsonl", """{"labeler": "l1", "prompt_id": "hot", "ranks": {"a": 2, "b": 1, "c": 3}}""");
        string second = WriteFile("b.csv", "labeler,prompt_id,completion_id,rank", "l1,hot,a,1", "l1,hot,b,2", "l1,hot,c,3");
        var importer = new RankingImporter(TutorialExample.Sets);
        importer.Import(first);
        importer.Import(second);
        Assert.That(importer.Accepted, Has.Count.EqualTo(1));
        Assert.That(importer.Rejected, Has.Count.EqualTo(3));
        Assert.That(importer.Rejected.All(r => r.File == second && r.Reason.Contains("already ranked")));
    }

    [Test]
    public void MissingFile_IsAClearError()
    {
        var e = Assert.Throws<InvalidInputException>(() => new RankingImporter(TutorialExample.Sets).Import(Path.Combine(dir, "nope.jsonl")));
        Assert.That(e!.Message, Does.Contain("nope.jsonl").And.Contain("not found"));
    }

    [Test]
    public void CompletionsFile_BadLines_NameFileAndLine()
    {
        string path = WriteFile("c.jsonl",
            """{"prompt_id": "p1", "prompt": "hi", "completions": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]}""",
            """{"prompt_id": "p2", "prompt": "hi", "completions": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}""");
        var e = Assert.Throws<InvalidInputException>(() => CompletionSets.Load(path));
        Assert.That(e!.Message, Does.StartWith($"{path}:2: duplicate completion id \"a\""));
    }

    [Test]
    public void NormalisedRankings_RoundTripThroughTheImporter()
    {
        string path = Path.Combine(dir, "out.jsonl");
        var rankings = new[] { TutorialExample.Rankings[0], new Ranking("l9", "hot", [Rank.Failed, Rank.Of(1), Rank.Of(1)], "t") };
        RankingFiles.Write(path, rankings, TutorialExample.Sets);
        var importer = new RankingImporter(TutorialExample.Sets);
        importer.Import(path);
        Assert.That(importer.Rejected, Is.Empty);
        Assert.That(importer.Accepted.Select(r => r.Ranks), Is.EqualTo(rankings.Select(r => r.Ranks)));
    }

    [Test]
    public void DefaultLabelerInstructions_ShipWithTheLibrary()
    {
        Assert.That(LabelerInstructions.Default, Does.Contain("Mark failures with F").And.Contain("Ties are allowed"));
    }
}
