using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Cai;

/// <summary>One critique–revision round: the principle sampled, what the model said, and the revised reply.</summary>
public sealed record RevisionRound(int Round, string Principle, string CritiqueRequest, string Critique, string RevisionRequest, string Revision);

/// <summary>The full trace for one prompt.</summary>
public sealed record RevisionTrace(string PromptId, string Prompt, string InitialResponse, IReadOnlyList<RevisionRound> Rounds)
{
    /// <summary>The last revision (the initial response when there were no rounds).</summary>
    public string Final => Rounds.Count == 0 ? InitialResponse : Rounds[^1].Revision;
}

/// <summary>Settings of the critique–revision stage.</summary>
public sealed record RevisionOptions(int Rounds = 1, CaiSampling? Sampling = null, ulong Seed = 0)
{
    public CaiSampling EffectiveSampling => Sampling ?? new CaiSampling();
}

/// <summary>
/// The supervised stage of Constitutional AI: answer each red-team prompt, then per round critique the current reply
/// under a principle sampled with the seed, and revise it as the critique suggests. The few-shot examples of the
/// constitution precede each critique and revision request as earlier turns of the conversation.
/// </summary>
public sealed class CritiqueReviser
{
    private readonly ICaiLanguageModel model;

    public CritiqueReviser(ICaiLanguageModel model, Constitution constitution)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        Constitution = constitution ?? throw new ArgumentNullException(nameof(constitution));
    }

    public Constitution Constitution { get; }

    /// <summary>All prompts advance together, one batched generation per step; returns one trace per prompt, in order.</summary>
    public List<RevisionTrace> Run(IReadOnlyList<RedTeamPrompt> prompts, RevisionOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Rounds);
        var c = Constitution;
        var sampling = options.EffectiveSampling;
        int n = prompts.Count;
        var first = model.Generate([.. prompts.Select(p => c.ChatFormat.RenderPrompt(p.Text))], sampling, PrincipleSampler.StreamSeed(options.Seed, -1, 0));
        var current = first.Select(c.ChatFormat.CleanReply).ToArray();
        var initial = current.ToArray();
        progress?.Invoke($"responses: {n}");
        var rounds = new List<RevisionRound>[n];
        for (int i = 0; i < n; i++) rounds[i] = [];
        for (int r = 0; r < options.Rounds; r++)
        {
            var principles = new CritiquePrinciple[n];
            var critiquePrompts = new string[n];
            for (int i = 0; i < n; i++)
            {
                principles[i] = c.Principles[PrincipleSampler.Sample(options.Seed, i, r, c.Principles.Count)];
                critiquePrompts[i] = CritiquePrompt(prompts[i].Text, current[i], principles[i]);
            }

            var critiques = model.Generate(critiquePrompts, sampling, PrincipleSampler.StreamSeed(options.Seed, -2, r)).Select(c.ChatFormat.CleanReply).ToArray();
            var revisionPrompts = new string[n];
            for (int i = 0; i < n; i++) revisionPrompts[i] = RevisionPrompt(prompts[i].Text, current[i], principles[i], critiques[i]);
            var revisions = model.Generate(revisionPrompts, sampling, PrincipleSampler.StreamSeed(options.Seed, -3, r)).Select(c.ChatFormat.CleanReply).ToArray();
            for (int i = 0; i < n; i++)
            {
                rounds[i].Add(new RevisionRound(r + 1, principles[i].Name, principles[i].CritiqueRequest, critiques[i], principles[i].RevisionRequest, revisions[i]));
                current[i] = revisions[i];
            }

            progress?.Invoke($"round {r + 1}/{options.Rounds} done");
        }

        var traces = new List<RevisionTrace>(n);
        for (int i = 0; i < n; i++) traces.Add(new RevisionTrace(prompts[i].Id, prompts[i].Text, initial[i], rounds[i]));
        return traces;
    }

    /// <summary>The chat-formatted critique request (few-shot turns first).</summary>
    public string CritiquePrompt(string prompt, string response, CritiquePrinciple principle)
    {
        var turns = new List<ChatTurn>();
        foreach (var ex in Constitution.FewShot)
        {
            turns.Add(new ChatTurn(ChatRole.User, RenderCritique(ex.Prompt, ex.Response, ex.CritiqueRequest)));
            turns.Add(new ChatTurn(ChatRole.Assistant, ex.Critique));
        }

        turns.Add(new ChatTurn(ChatRole.User, RenderCritique(prompt, response, principle.CritiqueRequest)));
        return Constitution.ChatFormat.RenderPrompt(turns);
    }

    /// <summary>The chat-formatted revision request (few-shot turns first).</summary>
    public string RevisionPrompt(string prompt, string response, CritiquePrinciple principle, string critique)
    {
        var turns = new List<ChatTurn>();
        foreach (var ex in Constitution.FewShot)
        {
            turns.Add(new ChatTurn(ChatRole.User, RenderRevision(ex.Prompt, ex.Response, ex.CritiqueRequest, ex.Critique, ex.RevisionRequest)));
            turns.Add(new ChatTurn(ChatRole.Assistant, ex.Revision));
        }

        turns.Add(new ChatTurn(ChatRole.User, RenderRevision(prompt, response, principle.CritiqueRequest, critique, principle.RevisionRequest)));
        return Constitution.ChatFormat.RenderPrompt(turns);
    }

    private string RenderCritique(string prompt, string response, string request) =>
        Constitution.Templates.Critique.Render(new Dictionary<string, string> { ["prompt"] = prompt, ["response"] = response, ["critique_request"] = request });

    private string RenderRevision(string prompt, string response, string critiqueRequest, string critique, string revisionRequest) =>
        Constitution.Templates.Revision.Render(new Dictionary<string, string>
        {
            ["prompt"] = prompt, ["response"] = response, ["critique_request"] = critiqueRequest, ["critique"] = critique, ["revision_request"] = revisionRequest,
        });

    /// <summary>revisions.jsonl: {prompt_id, prompt, initial_response, rounds: [{round, principle, critique_request, critique, revision_request, revision}], final}.</summary>
    public static void WriteTraces(string path, IEnumerable<RevisionTrace> traces) =>
        JsonLines.Write(path, traces, static (w, t) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt_id", t.PromptId);
            w.WriteString("prompt", t.Prompt);
            w.WriteString("initial_response", t.InitialResponse);
            w.WriteStartArray("rounds");
            foreach (var r in t.Rounds)
            {
                w.WriteStartObject();
                w.WriteNumber("round", r.Round);
                w.WriteString("principle", r.Principle);
                w.WriteString("critique_request", r.CritiqueRequest);
                w.WriteString("critique", r.Critique);
                w.WriteString("revision_request", r.RevisionRequest);
                w.WriteString("revision", r.Revision);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteString("final", t.Final);
            w.WriteEndObject();
        });

    /// <summary>sft.jsonl: {prompt_id, prompt, response = final revision}, the input of `rlhf sft`.</summary>
    public static void WriteSft(string path, IEnumerable<RevisionTrace> traces) =>
        JsonLines.Write(path, traces, static (w, t) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt_id", t.PromptId);
            w.WriteString("prompt", t.Prompt);
            w.WriteString("response", t.Final);
            w.WriteEndObject();
        });
}
