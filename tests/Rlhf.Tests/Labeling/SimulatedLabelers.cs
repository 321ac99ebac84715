using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Rlhf.Feedback;

namespace Rlhf.Tests.Labeling;

/// <summary>
/// Labelers driven over HTTP as the page drives the API: sign in, claim a batch, rank each item, repeat until
/// nothing is left. The ranks a labeler gives an item follow from (labeler, item), so they can be checked later.
/// </summary>
internal sealed class SimulatedLabelers
{
    public ConcurrentBag<(string Labeler, long ItemId, string Ranks)> Acknowledged { get; } = [];

    public ConcurrentBag<double> LatenciesMs { get; } = [];

    public int Requests => requests;

    private int requests;

    public static string RanksFor(string labeler, long itemId, int completions)
    {
        // A deterministic permutation (ties and F now and then) that differs between labelers and items.
        uint hash = 2166136261;
        foreach (char ch in labeler) hash = (hash ^ ch) * 16777619;
        int seed = (int)((hash * 31 + (ulong)itemId * 7919) % 1_000_003);
        var random = new Random(seed);
        var ranks = Enumerable.Range(1, completions).Select(r => r.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        random.Shuffle(ranks);
        if (seed % 5 == 0) ranks[0] = ranks[1];
        if (seed % 7 == 0) ranks[^1] = "F";
        return string.Join(",", ranks);
    }

    /// <summary>Runs one labeler until the queue is empty or <paramref name="stop"/> fires; every 10th ranking is sent twice at once (a double submit).</summary>
    public async Task Run(Uri baseAddress, string name, string token, int completions, CancellationToken stop)
    {
        using var client = await ApiClient.SignIn(baseAddress, token);
        while (!stop.IsCancellationRequested)
        {
            Interlocked.Increment(ref requests);
            var pending = await client.ClaimPending();
            if (pending.Count == 0) return;
            foreach (long item in pending)
            {
                if (stop.IsCancellationRequested) return;
                string ranks = RanksFor(name, item, completions);
                object body = new { ranks = ranks.Split(',') };
                int copies = item % 10 == 0 ? 2 : 1;
                var started = Stopwatch.GetTimestamp();
                var responses = await Task.WhenAll(Enumerable.Range(0, copies).Select(_ => client.Post($"/api/labeler/items/{item}/ranking", body)));
                LatenciesMs.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                Interlocked.Add(ref requests, copies);
                foreach (var r in responses)
                {
                    if (r.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"{name} item {item}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
                    r.Dispose();
                }

                Acknowledged.Add((name, item, ranks));
            }
        }
    }

    public static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    public static void AssertEveryAcknowledgedRankingStoredOnce(IEnumerable<(string Labeler, long ItemId, string Ranks)> acknowledged, Rlhf.Labeling.LabelingStore store)
    {
        var snapshot = store.Snapshot();
        var stored = new Dictionary<(string, string), string>();
        foreach (var r in snapshot.Rankings)
        {
            Assert.That(stored.TryAdd((r.Labeler, r.PromptId), string.Join(",", r.Ranks)), Is.True, $"{r.Labeler} ranked {r.PromptId} twice");
        }

        var prompts = PromptIdsByItem(store);
        foreach (var (labeler, item, ranks) in acknowledged)
        {
            Assert.That(stored.TryGetValue((labeler, prompts[item]), out var s), Is.True, $"acknowledged ranking of item {item} by {labeler} is missing");
            Assert.That(s, Is.EqualTo(ranks), $"{labeler} item {item}");
        }
    }

    private static Dictionary<long, string> PromptIdsByItem(Rlhf.Labeling.LabelingStore store)
    {
        using var c = store.Database.Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT id, prompt_id FROM items";
        using var r = cmd.ExecuteReader();
        var map = new Dictionary<long, string>();
        while (r.Read()) map[r.GetInt64(0)] = r.GetString(1);
        return map;
    }
}
