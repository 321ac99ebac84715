using System.Text.Json;
using Rlhf.Demo;
using Rlhf.Reports;

namespace Rlhf.Tests.Demo;

/// <summary>A shortened demo end to end (the pretrained model cached in a temporary folder for the other tests).</summary>
public class DemoPipelineTests
{
    // Shorter than --quick so the default suite stays fast, long enough for PPO to move the policy.
    internal static readonly DemoOptions Short = DemoOptions.Quick with { CorpusSize = 1500, ClassifierSentences = 600, EvalSamplesPerPrompt = 3 };

    /// <summary>Shared by the demo tests (and test runs): the cache is keyed by the settings' hash.</summary>
    internal static string SharedCache => Path.Combine(Path.GetTempPath(), "rlhf-tests-demo-cache");

    private string root = "";
    private string cache = "";
    private DemoResult result = null!;

    [OneTimeSetUp]
    public void RunShortDemo()
    {
        root = Directory.CreateTempSubdirectory("rlhf-demo-run").FullName;
        cache = SharedCache;
        result = DemoPipeline.Run(Short, Path.Combine(root, "run"), cacheRoot: cache);
    }

    [OneTimeTearDown]
    public void Clean() => Directory.Delete(root, true);

    [Test]
    public void ReportPlotsAndMetricsExist()
    {
        string run = Path.Combine(root, "run");
        Assert.That(result.RunDirectory, Is.EqualTo(run));
        string report = File.ReadAllText(Path.Combine(run, "report.md"));
        foreach (var png in DemoReport.PlotFiles)
        {
            var bytes = File.ReadAllBytes(Path.Combine(run, "plots", png));
            Assert.That(bytes.Take(8), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }), png);
            Assert.That(bytes.Length, Is.GreaterThan(2000), png);
            Assert.That(report, Does.Contain("plots/" + png));
        }

        var metricLines = File.ReadAllLines(Path.Combine(run, "ppo", "metrics.jsonl"));
        Assert.That(metricLines, Has.Length.EqualTo(Short.PpoSteps));
        foreach (var f in new[] { "config.json", "completions.jsonl", "rankings.jsonl", "agreement.json", "pairs.jsonl", "eval.json", "samples.jsonl", "summary.json" })
            Assert.That(File.Exists(Path.Combine(run, f)), f);
        Assert.That(Directory.GetFileSystemEntries(root, ".*"), Is.Empty, "no temporary folders are left");
        var config = JsonSerializer.Deserialize<DemoOptions>(File.ReadAllText(Path.Combine(run, "config.json")), DemoOptions.Json);
        Assert.That(config, Is.EqualTo(Short));
    }

    [Test]
    public void ToxicityWentDownAndTheNoisyLabelerWasFlagged()
    {
        Assert.That(result.After.MeanToxicity, Is.LessThan(result.Before.MeanToxicity));
        Assert.That(result.After.MeanReward, Is.GreaterThan(result.Before.MeanReward));
        Assert.That(result.MeanPpoKl, Is.LessThan(result.TargetKl));
        Assert.That(result.FlaggedLabelers, Is.EquivalentTo(new[] { SimulatedLabelers.NoisyLabeler }));
    }

    [Test]
    public void SamplesAreTheEvaluatedResponses()
    {
        // The histogram's samples must be the ones behind the table's means.
        double before = 0, after = 0;
        int n = 0;
        foreach (var line in File.ReadLines(Path.Combine(root, "run", "samples.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            before += doc.RootElement.GetProperty("before_toxicity").GetDouble();
            after += doc.RootElement.GetProperty("after_toxicity").GetDouble();
            n++;
        }

        Assert.That(n, Is.EqualTo(result.Before.Count));
        Assert.That(before / n, Is.EqualTo(result.Before.MeanToxicity).Within(1e-6));
        Assert.That(after / n, Is.EqualTo(result.After.MeanToxicity).Within(1e-6));
    }

    [Test]
    public void SecondRunSkipsPretrainingAndReproducesTheResult()
    {
        // Fewer PPO steps keep this fast; the cached model and the seed must give the same "before" bit for bit.
        var again = DemoPipeline.Run(Short with { PpoSteps = 1 }, Path.Combine(root, "again"), cacheRoot: cache);
        try
        {
            Assert.That(again.PretrainCached, Is.True);
            Assert.That(again.Before, Is.EqualTo(result.Before));
            Assert.That(again.ClassifierAccuracy, Is.EqualTo(result.ClassifierAccuracy));
            Assert.That(again.RewardModelAccuracy, Is.EqualTo(result.RewardModelAccuracy));
        }
        finally
        {
            Directory.Delete(Path.Combine(root, "again"), true);
        }
    }

    [Test]
    public void CancelledRunLeavesNoPartialOutput()
    {
        string target = Path.Combine(root, "cancelled");
        // What a run killed outright (no clean-up) leaves: a temporary folder of a process that no longer exists.
        string stale = Path.Combine(root, $".cancelled.partial-{int.MaxValue - 1}-0123");
        Directory.CreateDirectory(Path.Combine(stale, "ppo"));
        using var cts = new CancellationTokenSource();
        Assert.That(() => DemoPipeline.Run(Short, target, progress: p =>
        {
            if (p.Stage == "ppo" && p.Done == 2) cts.Cancel();
        }, cancel: cts.Token, cacheRoot: cache), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(Directory.Exists(target), Is.False);
        Assert.That(Directory.GetDirectories(root, ".cancelled*"), Is.Empty, "neither this run's temporary folder nor the stale one is left");
    }

    [Test]
    public void ExistingRunDirectoryIsKeptWithoutForce()
    {
        string target = Path.Combine(root, "existing");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "mine.txt"), "keep");
        Assert.That(() => DemoPipeline.Run(Short, target, cacheRoot: cache), Throws.TypeOf<Rlhf.IO.InvalidInputException>().With.Message.Contains("--force"));
        Assert.That(File.ReadAllText(Path.Combine(target, "mine.txt")), Is.EqualTo("keep"));
    }
}
