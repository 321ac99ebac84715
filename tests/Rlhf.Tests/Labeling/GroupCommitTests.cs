using Rlhf.Feedback;
using Rlhf.Labeling;

namespace Rlhf.Tests.Labeling;

public class GroupCommitTests
{
    /// <summary>A project of 40 three-completion items, all claimed by its one labeler, ana.</summary>
    private static async Task<(TestProject Project, LabelerIdentity Ana, List<long> Items)> FortyClaimedItems()
    {
        var project = TestProject.Create(TestProject.SyntheticSets(40, 3), 1, "ana");
        var ana = project.Store.FindLabeler(project.Tokens["ana"])!;
        await project.Store.ClaimAsync(ana.Id, 40);
        var items = project.Store.Assignments(ana.Id).Select(a => a.ItemId).ToList();
        Assert.That(items, Has.Count.EqualTo(40));
        return (project, ana, items);
    }

    [Test]
    public async Task ConcurrentWrites_ARefusedOneRollsBackAlone_TheOthersCommit()
    {
        var (project, ana, items) = await FortyClaimedItems();
        using var _ = project;

        // Every 4th write is refused inside the batch (wrong number of ranks); the rest must land.
        var writes = items.Select((item, i) => Task.Run(() => project.Store.SaveRankingAsync(ana.Id, item,
            n => i % 4 == 0 ? [Rank.Of(1)] : [Rank.Of(3), Rank.Of(1), Rank.Of(2)]))).ToList();
        for (int i = 0; i < writes.Count; i++)
        {
            if (i % 4 == 0)
            {
                var e = await Assert.ThrowsAsync<LabelingException>(async () => await writes[i]);
                Assert.That(e!.Status, Is.EqualTo(400));
            }
            else
            {
                Assert.That(await writes[i], Is.EqualTo(1));
            }
        }

        var stored = project.Store.Snapshot().Rankings;
        Assert.That(stored, Has.Count.EqualTo(30));
        Assert.That(stored.Select(r => string.Join(",", r.Ranks)), Has.All.EqualTo("3,1,2"));
        var ranked = project.Store.Assignments(ana.Id).Where(a => a.Ranked).Select(a => a.ItemId);
        Assert.That(ranked, Is.EquivalentTo(items.Where((_, i) => i % 4 != 0)));
    }

    [Test]
    public async Task AWriteThrowingAnyException_FailsAlone_TheOthersCommit()
    {
        // Not only refusals (LabelingException): any exception of one write, e.g. a parse error of a bad request,
        // used to fail the whole batch, so other labelers' rankings were lost with a 500.
        var (project, ana, items) = await FortyClaimedItems();
        using var _ = project;
        var writes = items.Select((item, i) => Task.Run(() => project.Store.SaveRankingAsync(ana.Id, item,
            n => i % 4 == 0 ? throw new InvalidOperationException("bad bytes") : [Rank.Of(3), Rank.Of(1), Rank.Of(2)]))).ToList();
        for (int i = 0; i < writes.Count; i++)
        {
            if (i % 4 == 0) await Assert.ThrowsAsync<InvalidOperationException>(async () => await writes[i]);
            else Assert.That(await writes[i], Is.EqualTo(1));
        }

        Assert.That(project.Store.Snapshot().Rankings, Has.Count.EqualTo(30));
    }
}

public class GroupCommitBatchingTests
{
    [Test]
    public async Task WritesQueuedBehindACommit_ShareOneTransaction_AndARefusedOneLeavesNoTrace()
    {
        string folder = Directory.CreateTempSubdirectory("rlhf-group-").FullName;
        try
        {
            var db = LabelingDatabase.Open(Path.Combine(folder, "g.db"));
            var commits = new GroupCommit(db);
            using var entered = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            var first = Task.Run(() => commits.Run((c, tx) =>
            {
                entered.Set();
                release.Wait();
                return Insert(c, tx, "first");
            }));
            entered.Wait();

            // These queue up while the first write holds the gate; one of them fails after writing a row.
            var queued = Enumerable.Range(0, 10).Select(i => Task.Run(() => commits.Run((c, tx) =>
            {
                var txSeen = Insert(c, tx, $"w{i}");
                if (i == 3) throw LabelingException.BadRequest("refused after writing");
                return txSeen;
            }))).ToList();
            while (commits.Queued < 10) await Task.Delay(1);
            release.Set();

            var firstTx = await first;
            var txs = new List<object>();
            for (int i = 0; i < queued.Count; i++)
            {
                if (i == 3) await Assert.ThrowsAsync<LabelingException>(async () => await queued[i]);
                else txs.Add(await queued[i]);
            }

            Assert.That(txs.Distinct(ReferenceEqualityComparer.Instance).Count(), Is.EqualTo(1), "the nine queued writes committed together");
            Assert.That(txs[0], Is.Not.SameAs(firstTx));
            using var check = db.Connect();
            using var cmd = check.CreateCommand();
            cmd.CommandText = "SELECT group_concat(name, ',') FROM (SELECT name FROM labelers ORDER BY id)";
            cmd.CommandText = "SELECT COUNT(*) FROM labelers WHERE name = 'w3'";
            Assert.That(cmd.ExecuteScalar(), Is.EqualTo(0L));
            cmd.CommandText = "SELECT COUNT(*) FROM labelers";
            Assert.That(cmd.ExecuteScalar(), Is.EqualTo(10L));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static object Insert(Microsoft.Data.Sqlite.SqliteConnection c, Microsoft.Data.Sqlite.SqliteTransaction tx, string name)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO labelers(name, token_hash, created_utc) VALUES ($n, randomblob(32), 'now')";
        cmd.Parameters.AddWithValue("$n", name);
        cmd.ExecuteNonQuery();
        return tx;
    }
}
