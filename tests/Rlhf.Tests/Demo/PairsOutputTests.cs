using System.Text.Json;
using Rlhf.Demo;
using Rlhf.Feedback;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Demo;

/// <summary>rlhf pairs --json / --quiet on the demo's simulated labelers' rankings.</summary>
public class PairsOutputTests
{
    private static void Setup(TempDir dir)
    {
        var corpus = CustomerReplyCorpus.Generate(12, 4);
        var sets = new List<CompletionSet>();
        for (int i = 0; i < 3; i++)
            sets.Add(new CompletionSet($"p{i}", corpus[4 * i].Message, [.. Enumerable.Range(0, 4).Select(k => new Completion($"c{k}", corpus[4 * i + k].Reply))]));
        File.WriteAllLines(dir.File("completions.jsonl"), sets.Select(s => JsonSerializer.Serialize(new
        {
            prompt_id = s.PromptId, prompt = s.Prompt, completions = s.Completions.Select(c => new { id = c.Id, text = c.Text }),
        })));
        RankingFiles.Write(dir.File("rankings.jsonl"), SimulatedLabelers.Rank(sets, 0.95, 1), sets.ToDictionary(s => s.PromptId));
    }

    [Test]
    public void JsonReportsCountsAndQuietPrintsNothing()
    {
        using var dir = new TempDir();
        Setup(dir);
        var r = CliRunner.Run(dir.Path, "pairs", "--completions", "completions.jsonl", "--rankings", "rankings.jsonl", "--out", "pairs.jsonl", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.That(doc.RootElement.GetProperty("rankings").GetInt32(), Is.EqualTo(9));
        Assert.That(doc.RootElement.GetProperty("pairs").GetInt32(), Is.EqualTo(File.ReadAllLines(dir.File("pairs.jsonl")).Length));
        var q = CliRunner.Run(dir.Path, "pairs", "--completions", "completions.jsonl", "--rankings", "rankings.jsonl", "--out", "pairs.jsonl", "--force", "--quiet");
        Assert.That(q.ExitCode, Is.EqualTo(0), q.Stderr);
        Assert.That(q.Stdout, Is.Empty);
    }
}
