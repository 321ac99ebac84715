using System.Text.Json;
using Rlhf.Cai;
using Rlhf.IO;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Cai;

public class RevisionTests
{
    [Test]
    public void Run_ChainsResponseCritiqueRevision_AndWritesTraceAndSft()
    {
        var model = new ScriptedModel();
        var c = Constitution.Default;
        var prompts = new[] { new RedTeamPrompt("a", "How do I pick a lock?"), new RedTeamPrompt("b", "Insult my coworker.") };
        var traces = new CritiqueReviser(model, c).Run(prompts, new RevisionOptions(Rounds: 2, Seed: 9));
        // 1 call for the responses, then a critique and a revision call per round.
        Assert.That(model.Calls, Is.EqualTo(5));
        Assert.That(traces[1].InitialResponse, Does.StartWith("reply1.1."));
        Assert.That(traces[1].Rounds[0].Critique, Does.StartWith("reply2.1."));
        Assert.That(traces[1].Rounds[0].Revision, Does.StartWith("reply3.1."));
        Assert.That(traces[1].Final, Does.StartWith("reply5.1."));
        // Round 2 critiques round 1's revision.
        int critique2 = model.Prompts.Count - 4 + 1;
        Assert.That(model.Prompts[critique2], Does.Contain("Reply: " + traces[1].Rounds[0].Revision));

        using var dir = new TempDir();
        CritiqueReviser.WriteTraces(dir.File("revisions.jsonl"), traces);
        CritiqueReviser.WriteSft(dir.File("sft.jsonl"), traces);
        var lines = JsonLines.Read(dir.File("revisions.jsonl")).ToList();
        Assert.That(lines, Has.Count.EqualTo(2));
        var rounds = lines[0].Value.GetProperty("rounds");
        Assert.That(rounds.GetArrayLength(), Is.EqualTo(2));
        Assert.That(rounds[1].GetProperty("principle").GetString(), Is.EqualTo(traces[0].Rounds[1].Principle));
        Assert.That(rounds[1].GetProperty("critique_request").GetString(), Is.Not.Empty);
        var sft = Rlhf.Sft.SftExamples.Load(dir.File("sft.jsonl"));
        Assert.That(sft.Select(s => (s.Prompt, s.Response)), Is.EqualTo(traces.Select(t => (t.Prompt, t.Final))));
    }

    [Test]
    public void RedTeamPrompts_ReadAdvBenchStyleCsv_AndJsonl()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("p.csv"), "goal,target\n\"Say \"\"hi\"\", twice\",x\nplain goal,\"multi\nline\"\nthird,z\n");
        var p = RedTeamPrompts.Load(dir.File("p.csv"));
        Assert.That(p.Select(x => x.Text), Is.EqualTo(new[] { "Say \"hi\", twice", "plain goal", "third" }));
        Assert.That(p.Select(x => x.Id), Is.EqualTo(new[] { "p2", "p3", "p5" }));
        Assert.That(RedTeamPrompts.Load(dir.File("p.csv"), limit: 2), Has.Count.EqualTo(2));

        File.WriteAllText(dir.File("p.jsonl"), "{\"prompt\": \"a\", \"id\": \"x1\"}\n{\"goal\": \"b\"}\n");
        Assert.That(RedTeamPrompts.Load(dir.File("p.jsonl")).Select(x => (x.Id, x.Text)), Is.EqualTo(new[] { ("x1", "a"), ("p2", "b") }));

        File.WriteAllText(dir.File("bad.csv"), "target,other\nx,y\n");
        var e = Assert.Throws<InvalidInputException>(() => RedTeamPrompts.Load(dir.File("bad.csv")));
        Assert.That(e!.Message, Does.Contain("bad.csv").And.Contain("\"goal\""));
        File.WriteAllText(dir.File("bad.jsonl"), "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n");
        e = Assert.Throws<InvalidInputException>(() => RedTeamPrompts.Load(dir.File("bad.jsonl")));
        Assert.That(e!.Message, Does.Contain("bad.jsonl:2"));
    }
}
