using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Rlhf.Feedback;
using Rlhf.Labeling;
using Rlhf.Tests.Feedback;

namespace Rlhf.Tests.Labeling;

public class LabelingStoreTests
{
    [Test]
    public void NewDatabase_IsMigratedToTheCurrentVersion_InWalMode_AndReopeningChangesNothing()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3, "ana");
        LabelingStore.Open(project.DatabasePath);
        using var c = new SqliteConnection($"Data Source={project.DatabasePath}");
        c.Open();
        Assert.That(Scalar(c, "PRAGMA user_version"), Is.EqualTo(LabelingDatabase.SchemaVersion));
        Assert.That(Scalar(c, "PRAGMA journal_mode"), Is.EqualTo("wal"));
        Assert.That(Scalar(c, "SELECT COUNT(*) FROM items"), Is.EqualTo(1L));
        Assert.That(Scalar(c, "SELECT group_concat(completion_id, ',') FROM (SELECT completion_id FROM completions ORDER BY position)"), Is.EqualTo("a,b,c"));
    }

    [Test]
    public void Tokens_AreStoredOnlyAsTheirSha256()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3, "ana");
        string token = project.Tokens["ana"];
        Assert.That(Encoding.ASCII.GetByteCount(token), Is.GreaterThanOrEqualTo(43), "256 random bits");
        using var c = new SqliteConnection($"Data Source={project.DatabasePath}");
        c.Open();
        using var cmd = new SqliteCommand("SELECT token_hash FROM labelers WHERE name = 'ana'", c);
        Assert.That((byte[])cmd.ExecuteScalar()!, Is.EqualTo(SHA256.HashData(Encoding.UTF8.GetBytes(token))));
        c.Close();
        SqliteConnection.ClearAllPools();
        byte[] file = File.ReadAllBytes(project.DatabasePath).Concat(ReadIfExists(project.DatabasePath + "-wal")).ToArray();
        Assert.That(Encoding.Latin1.GetString(file), Does.Not.Contain(token).And.Not.Contain(project.OrganiserToken));
        Assert.That(project.Store.FindLabeler(token)!.Name, Is.EqualTo("ana"));
        Assert.That(project.Store.FindLabeler(token + "x"), Is.Null);
    }

    [Test]
    public void Claim_GivesEachItemToAtMostOverlapLabelers_AndNeverTwiceToOne()
    {
        using var project = TestProject.Create(TestProject.SyntheticSets(5, 3), 2, "a", "b", "c", "d");
        var labelers = project.Tokens.Keys.Select(n => project.Store.FindLabeler(project.Tokens[n])!).ToList();
        foreach (var l in labelers) project.Store.Claim(l.Id, 2);
        Assert.That(labelers.Select(l => project.Store.Assignments(l.Id).Count), Has.All.EqualTo(2), "the queue is topped up to 2 unranked items");

        // Rank what is queued, claim again, until nothing is left: every item ends with exactly k labelers.
        int claimed;
        do
        {
            foreach (var l in labelers)
            {
                foreach (var a in project.Store.Assignments(l.Id).Where(a => !a.Ranked))
                {
                    project.Store.SaveRanking(l.Id, a.ItemId, n => Enumerable.Range(1, n).Select(Rank.Of).ToArray());
                }
            }

            claimed = labelers.Sum(l => project.Store.Claim(l.Id, 2));
        }
        while (claimed > 0);

        var perItem = labelers.SelectMany(l => project.Store.Assignments(l.Id)).GroupBy(a => a.ItemId).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(perItem, Has.Count.EqualTo(5));
        Assert.That(perItem.Values, Has.All.EqualTo(2), "5 items × k=2 = 10 assignments over 4 labelers");
        foreach (var l in labelers) Assert.That(project.Store.Assignments(l.Id).Select(a => a.ItemId), Is.Unique);
        Assert.That(project.Store.Status().ItemsShortOfOverlap, Is.Zero);
    }

    [Test]
    public void Resubmitting_ReplacesTheRanking_AndBumpsTheRevisionOnlyWhenItChanges()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3, "ana");
        var ana = project.Store.FindLabeler(project.Tokens["ana"])!;
        project.Store.Claim(ana.Id, 10);
        long item = project.Store.Assignments(ana.Id).Single().ItemId;
        Assert.That(project.Store.SaveRanking(ana.Id, item, _ => [Rank.Of(1), Rank.Of(2), Rank.Of(3)]), Is.EqualTo(1));
        Assert.That(project.Store.SaveRanking(ana.Id, item, _ => [Rank.Of(1), Rank.Of(2), Rank.Of(3)]), Is.EqualTo(1), "a double submit is not a change");
        Assert.That(project.Store.SaveRanking(ana.Id, item, _ => [Rank.Of(2), Rank.Of(1), Rank.Failed]), Is.EqualTo(2));
        var snapshot = project.Store.Snapshot();
        Assert.That(snapshot.Rankings, Has.Count.EqualTo(1));
        Assert.That(snapshot.Rankings[0].Ranks, Is.EqualTo(new[] { Rank.Of(2), Rank.Of(1), Rank.Failed }));
    }

    [Test]
    public void ClosedItems_RefuseChanges_With409()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 1, "ana");
        var ana = project.Store.FindLabeler(project.Tokens["ana"])!;
        project.Store.Claim(ana.Id, 10);
        long item = project.Store.Assignments(ana.Id).Single().ItemId;
        project.Store.SaveRanking(ana.Id, item, _ => [Rank.Of(1), Rank.Of(2), Rank.Of(3)]);
        Assert.That(project.Store.CloseComplete(), Is.EqualTo(1));
        var e = Assert.Throws<LabelingException>(() => project.Store.SaveRanking(ana.Id, item, _ => [Rank.Of(3), Rank.Of(2), Rank.Of(1)]));
        Assert.That(e!.Status, Is.EqualTo(409));
        Assert.That(e.Message, Does.Contain("closed"));
        Assert.That(project.Store.Snapshot().Rankings[0].Ranks[0], Is.EqualTo(Rank.Of(1)));
    }

    [Test]
    public void Export_IsReadByRankingImporter_WithRankingsAndThumbs()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3, "labeler1", "labeler2", "labeler3");
        foreach (var expected in TutorialExample.Rankings)
        {
            var who = project.Store.FindLabeler(project.Tokens[expected.Labeler])!;
            project.Store.Claim(who.Id, 10);
            project.Store.SaveRanking(who.Id, project.Store.Assignments(who.Id).Single().ItemId, _ => expected.Ranks);
        }

        var l1 = project.Store.FindLabeler(project.Tokens["labeler1"])!;
        project.Store.SaveThumb(l1.Id, project.Store.Assignments(l1.Id).Single().ItemId, 1, up: true);
        string path = Path.Combine(project.Folder, "rankings.jsonl");
        Assert.That(project.Store.Export(path, overwrite: false), Is.EqualTo((3, 1)));

        var importer = new RankingImporter(TutorialExample.Sets);
        importer.Import(path);
        Assert.That(importer.Rejected, Is.Empty);
        Assert.That(importer.Accepted.Select(r => (r.Labeler, r.PromptId, string.Join(",", r.Ranks))),
            Is.EqualTo(TutorialExample.Rankings.Select(r => (r.Labeler, r.PromptId, string.Join(",", r.Ranks)))));
        Assert.That(importer.Thumbs.Single(), Is.EqualTo(new ThumbFeedback("labeler1", "hot", "b", true, importer.Thumbs[0].Source)));
    }

    [TestCase("[2, 1]", "has 2 entries; this item has 3")]
    [TestCase("[0, 1, 2]", "ranks[0] = \"0\" is not a rank; expected an integer 1..3 or \"F\"")]
    [TestCase("[1, 4, 2]", "ranks[1] = \"4\"")]
    [TestCase("[1, 2, \"G\"]", "ranks[2] = \"G\"")]
    [TestCase("[1, 2.5, 3]", "ranks[1] = \"2.5\"")]
    [TestCase("[1, null, 3]", "ranks[1] = \"\"")]
    [TestCase("{\"a\": 1}", "must be an array")]
    public void RankInput_RejectsBadRanks_NamingThePositionAndValue(string json, string message)
    {
        using var doc = JsonDocument.Parse(json);
        var e = Assert.Throws<LabelingException>(() => RankInput.Parse(doc.RootElement, 3));
        Assert.That(e!.Status, Is.EqualTo(400));
        Assert.That(e.Message, Does.Contain(message));
    }

    [Test]
    public void RankInput_AcceptsTiesAndF()
    {
        using var doc = JsonDocument.Parse("[1, \"1\", \"F\", \"f\"]");
        Assert.That(RankInput.Parse(doc.RootElement, 4), Is.EqualTo(new[] { Rank.Of(1), Rank.Of(1), Rank.Failed, Rank.Failed }));
        Assert.That(RankInput.FromStored(RankInput.Format([Rank.Of(3), Rank.Failed])), Is.EqualTo(new[] { Rank.Of(3), Rank.Failed }));
    }

    private static object? Scalar(SqliteConnection c, string sql)
    {
        using var cmd = new SqliteCommand(sql, c);
        return cmd.ExecuteScalar();
    }

    private static byte[] ReadIfExists(string path) => File.Exists(path) ? File.ReadAllBytes(path) : [];
}
