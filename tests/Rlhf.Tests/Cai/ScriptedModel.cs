using Rlhf.Cai;

namespace Rlhf.Tests.Cai;

/// <summary>
/// A language model with known behaviour: replies name the call, the prompt's index and the seed; option scores are
/// logBias for the first option plus a "quality" per reply text (looked up in the scored prompt), so the exact
/// preference can be computed by hand.
/// </summary>
internal sealed class ScriptedModel : ICaiLanguageModel
{
    public List<string> Prompts { get; } = [];

    public Dictionary<string, double> Quality { get; } = [];

    public double LabelABias { get; set; }

    public int Calls { get; private set; }

    public IReadOnlyList<string> Generate(IReadOnlyList<string> prompts, CaiSampling sampling, ulong seed)
    {
        Calls++;
        Prompts.AddRange(prompts);
        return [.. prompts.Select((p, i) => $"reply{Calls}.{i}.{seed % 1000}")];
    }

    /// <summary>log-score of " (A)" = bias + quality(option shown as A), of " (B)" = quality(option shown as B).</summary>
    public double[] OptionLogProbs(string prompt, IReadOnlyList<string> options)
    {
        // The comparison template shows "(A) <reply>\n\n(B) <reply>\n\n".
        int a = prompt.IndexOf("(A) ", StringComparison.Ordinal) + 4, b = prompt.IndexOf("(B) ", StringComparison.Ordinal) + 4;
        string ra = prompt[a..prompt.IndexOf("\n\n", a, StringComparison.Ordinal)];
        string rb = prompt[b..prompt.IndexOf("\n\n", b, StringComparison.Ordinal)];
        return [LabelABias + Quality.GetValueOrDefault(ra), Quality.GetValueOrDefault(rb)];
    }
}
