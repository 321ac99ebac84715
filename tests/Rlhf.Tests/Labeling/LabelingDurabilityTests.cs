using Microsoft.Data.Sqlite;
using Rlhf.Labeling;

namespace Rlhf.Tests.Labeling;

public class LabelingDurabilityTests
{
    private const int Labelers = 20, Items = 50, Completions = 4, KillAfter = 300;

    [Test]
    public async Task ServerKilledMidLoad_KeepsEveryAcknowledgedRanking_AndTheDatabaseIsIntact()
    {
        var names = Enumerable.Range(1, Labelers).Select(i => $"sim{i:00}").ToArray();
        using var project = TestProject.Create(TestProject.SyntheticSets(Items, Completions), Labelers, names);
        SqliteConnection.ClearAllPools();

        var sim = new SimulatedLabelers();
        using (var server = ServerProcess.Start(project.DatabasePath))
        {
            using var stop = new CancellationTokenSource();
            var runs = names.Select(n => Task.Run(async () =>
            {
                try
                {
                    await sim.Run(server.BaseAddress, n, project.Tokens[n], Completions, stop.Token);
                }
                catch (HttpRequestException)
                {
                    // The server died under this labeler: what it acknowledged before is what must survive.
                }
            })).ToArray();
            while (sim.Acknowledged.Count < KillAfter && !runs.All(t => t.IsCompleted)) await Task.Delay(5);
            server.Kill();
            stop.Cancel();
            await Task.WhenAll(runs);
            Assert.That(server.HasExited, Is.True);
        }

        var acknowledged = sim.Acknowledged.ToList();
        Assert.That(acknowledged, Has.Count.GreaterThanOrEqualTo(KillAfter).And.Count.LessThan(Labelers * Items), "killed mid-load");

        using (var restarted = ServerProcess.Start(project.DatabasePath))
        {
            // The restarted server serves the same rankings back.
            var (name, item, ranks) = acknowledged[0];
            using var client = await ApiClient.SignIn(restarted.BaseAddress, project.Tokens[name]);
            var view = await client.Json(client.Get($"/api/labeler/items/{item}"));
            Assert.That(string.Join(",", view.GetProperty("ranks").EnumerateArray().Select(r => r.GetString())), Is.EqualTo(ranks));

            SimulatedLabelers.AssertEveryAcknowledgedRankingStoredOnce(acknowledged, LabelingStore.Open(project.DatabasePath));
            using var c = new SqliteConnection($"Data Source={project.DatabasePath}");
            c.Open();
            using var check = new SqliteCommand("PRAGMA integrity_check", c);
            Assert.That(check.ExecuteScalar(), Is.EqualTo("ok"));
            restarted.Kill();
        }

        TestContext.Out.WriteLine($"killed after {acknowledged.Count} acknowledged rankings; all present after restart");
    }
}
