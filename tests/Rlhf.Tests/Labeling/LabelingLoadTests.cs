using System.Diagnostics;
using System.Globalization;
using Rlhf.Labeling;

namespace Rlhf.Tests.Labeling;

public class LabelingLoadTests
{
    private const int Labelers = 20, Items = 100, Completions = 4;

    [Test]
    public async Task TwentyConcurrentLabelers_Submit2000Rankings_EachStoredExactlyOnce()
    {
        var names = Enumerable.Range(1, Labelers).Select(i => $"sim{i:00}").ToArray();
        // k = 20: every labeler ranks every item, so all 20 are on the same items at the same time.
        using var project = TestProject.Create(TestProject.SyntheticSets(Items, Completions), Labelers, names);
        await using var server = await LabelingServer.StartAsync(project.Store, "http://127.0.0.1:0");
        var sim = new SimulatedLabelers();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(names.Select(n => Task.Run(() => sim.Run(server.BaseAddress, n, project.Tokens[n], Completions, CancellationToken.None))));
        clock.Stop();

        Assert.That(sim.Acknowledged, Has.Count.EqualTo(Labelers * Items));
        SimulatedLabelers.AssertEveryAcknowledgedRankingStoredOnce(sim.Acknowledged, project.Store);
        var status = project.Store.Status();
        Assert.That(status.Rankings, Is.EqualTo(2000));
        Assert.That(status.ItemsShortOfOverlap, Is.Zero);

        string report = string.Create(CultureInfo.InvariantCulture,
            $"labeling load: {Labelers} labelers, {sim.Acknowledged.Count} rankings, {sim.Requests} requests in {clock.Elapsed.TotalSeconds:F2} s = {sim.Requests / clock.Elapsed.TotalSeconds:F0} requests/s; ranking submit p50 {SimulatedLabelers.Percentile(sim.LatenciesMs, 0.5):F1} ms, p95 {SimulatedLabelers.Percentile(sim.LatenciesMs, 0.95):F1} ms");
        TestContext.Out.WriteLine(report);
        Console.WriteLine(report);
    }

    [Test]
    public async Task SimultaneousSubmits_AndARetryAfterAnAbortedRequest_LeaveOneRankingEach()
    {
        using var project = TestProject.Create(TestProject.SyntheticSets(1, 3), 2, "ana", "bob");
        await using var server = await LabelingServer.StartAsync(project.Store, "http://127.0.0.1:0");
        using var ana = await ApiClient.SignIn(server.BaseAddress, project.Tokens["ana"]);
        using var bob = await ApiClient.SignIn(server.BaseAddress, project.Tokens["bob"]);
        long item = (await ana.ClaimPending()).Single();
        Assert.That(await bob.ClaimPending(), Is.EqualTo(new[] { item }));

        // Two labelers on the same item, each double-submitting, all at once.
        var posts = Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? ana : bob).Post($"/api/labeler/items/{item}/ranking", new { ranks = i % 2 == 0 ? new[] { "1", "2", "3" } : new[] { "3", "F", "1" } }));
        foreach (var r in await Task.WhenAll(posts)) Assert.That((int)r.StatusCode, Is.EqualTo(200));

        // A page refreshed mid-submit: the request is abandoned, the page reloads its state and submits again.
        using (var abandon = new CancellationTokenSource())
        {
            var request = new HttpRequestMessage(HttpMethod.Post, $"/api/labeler/items/{item}/ranking")
            {
                Content = new StringContent("{\"ranks\": [2, 1, 3]}", System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("X-CSRF-Token", ana.Csrf);
            var inFlight = ana.Http.SendAsync(request, abandon.Token);
            abandon.Cancel();
            try
            {
                (await inFlight).Dispose();
            }
            catch (OperationCanceledException)
            {
            }
        }

        var state = await ana.Json(ana.Get("/api/labeler/state"));
        Assert.That(state.GetProperty("items")[0].GetProperty("ranked").GetBoolean(), Is.True);
        await ana.Json(ana.Post($"/api/labeler/items/{item}/ranking", new { ranks = new[] { "2", "1", "3" } }));

        var rankings = project.Store.Snapshot().Rankings.Select(r => (r.Labeler, string.Join(",", r.Ranks))).ToList();
        Assert.That(rankings, Is.EqualTo(new[] { ("ana", "2,1,3"), ("bob", "3,F,1") }));
    }
}
