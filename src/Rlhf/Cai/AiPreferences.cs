using System.Text.Json;
using Rlhf.Feedback;
using Rlhf.IO;

namespace Rlhf.Cai;

/// <summary>
/// An AI-labelled comparison: <see cref="Chosen"/> is the reply the feedback model preferred, with probability
/// <see cref="Preference"/> (≥ 0.5) that it is the better one; the soft label of the reward loss.
/// </summary>
public sealed record AiPreferencePair(
    string PromptId, string Prompt, string ChosenId, string Chosen, string RejectedId, string Rejected, double Preference, IReadOnlyList<PreferenceVote> Votes);

/// <summary>Settings of the RLAIF labelling stage.</summary>
/// <param name="ResponsesPerPrompt">Replies sampled per prompt (every pair of them is compared).</param>
/// <param name="PrinciplesPerComparison">Comparison principles sampled (distinct) per pair.</param>
public sealed record PreferenceOptions(int ResponsesPerPrompt = 2, int PrinciplesPerComparison = 2, CaiSampling? Sampling = null, ulong Seed = 0)
{
    public CaiSampling EffectiveSampling => Sampling ?? new CaiSampling(Temperature: 1f);
}

/// <summary>
/// The RLAIF labelling stage: sample replies from the policy (the SFT model), compare every pair with the feedback
/// model under sampled comparison principles (both option orders), write pairs with soft labels.
/// </summary>
public static class AiPreferences
{
    public static List<AiPreferencePair> Label(
        IReadOnlyList<RedTeamPrompt> prompts, ICaiLanguageModel policy, PreferenceLabeler labeler, PreferenceOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(labeler);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ResponsesPerPrompt < 2) throw new ArgumentOutOfRangeException(nameof(options), options.ResponsesPerPrompt, "ResponsesPerPrompt must be at least 2");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.PrinciplesPerComparison, nameof(options));
        var c = labeler.Constitution;
        int k = options.ResponsesPerPrompt;
        var inputs = new List<string>(prompts.Count * k);
        foreach (var p in prompts)
        {
            for (int j = 0; j < k; j++) inputs.Add(c.ChatFormat.RenderPrompt(p.Text));
        }

        var replies = policy.Generate(inputs, options.EffectiveSampling, PrincipleSampler.StreamSeed(options.Seed, -4, 0)).Select(c.ChatFormat.CleanReply).ToArray();
        progress?.Invoke($"sampled {replies.Length} replies");
        var pairs = new List<AiPreferencePair>();
        int comparison = 0;
        for (int i = 0; i < prompts.Count; i++)
        {
            var p = prompts[i];
            for (int a = 0; a < k; a++)
            {
                for (int b = a + 1; b < k; b++)
                {
                    var picks = PrincipleSampler.SampleDistinct(options.Seed, comparison++, 1, c.ComparisonPrinciples.Count, options.PrinciplesPerComparison);
                    var principles = picks.Select(x => c.ComparisonPrinciples[x]).ToArray();
                    string ra = replies[i * k + a], rb = replies[i * k + b];
                    var j = labeler.Judge(p.Text, ra, rb, principles);
                    string ida = $"{p.Id}-r{a}", idb = $"{p.Id}-r{b}";
                    pairs.Add(j.FirstBetter >= 0.5
                        ? new AiPreferencePair(p.Id, p.Text, ida, ra, idb, rb, j.FirstBetter, j.Votes)
                        : new AiPreferencePair(p.Id, p.Text, idb, rb, ida, ra, 1 - j.FirstBetter, j.Votes));
                }
            }

            progress?.Invoke($"labelled prompt {i + 1}/{prompts.Count}");
        }

        return pairs;
    }

    /// <summary>
    /// pairs.jsonl as `rlhf pairs` writes it (labeler "cai", margin 0, "preference" the soft label, omitted when 1)
    /// plus "votes" ({principle, first_as_a, second_as_a}, first = the reply listed first in the ids' order r0 &lt; r1).
    /// </summary>
    public static void Write(string path, IEnumerable<AiPreferencePair> pairs) =>
        JsonLines.Write(path, pairs, static (w, p) =>
        {
            w.WriteStartObject();
            PreferencePairs.WriteFields(w, new PreferencePair(p.PromptId, p.Prompt, p.ChosenId, p.Chosen, p.RejectedId, p.Rejected, "cai", 0, p.Preference));
            w.WriteStartArray("votes");
            foreach (var v in p.Votes)
            {
                w.WriteStartObject();
                w.WriteString("principle", v.Principle);
                w.WriteNumber("first_as_a", v.FirstAsA);
                w.WriteNumber("second_as_a", v.SecondAsA);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary>Reads the pairs and soft labels back, checked as <see cref="PreferencePairs.Read"/> checks them (votes
    /// are not needed downstream and are skipped).</summary>
    public static List<AiPreferencePair> Read(string path) =>
        PreferencePairs.Read(path).ConvertAll(p => new AiPreferencePair(p.PromptId, p.Prompt, p.ChosenId, p.Chosen, p.RejectedId, p.Rejected, p.Preference, []));
}
