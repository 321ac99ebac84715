using Rlhf.Reward;

namespace Rlhf.Ppo;

/// <summary>
/// A built-in reward for demos and tests: the number of non-overlapping, case-insensitive occurrences of
/// <see cref="Keyword"/> in the response (the prompt is ignored). The CLI's <c>--reward keyword:WORD</c>.
/// </summary>
public sealed class KeywordReward : IRewardFunction
{
    public KeywordReward(string keyword)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyword);
        Keyword = keyword;
    }

    public string Keyword { get; }

    public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        if (responses.Count != prompts.Count) throw new ArgumentException($"responses has {responses.Count} items, prompts {prompts.Count}.", nameof(responses));
        if (rewards.Length != responses.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {responses.Count}.", nameof(rewards));
        for (int i = 0; i < responses.Count; i++)
        {
            string r = responses[i] ?? "";
            int count = 0, at = 0;
            while ((at = r.IndexOf(Keyword, at, StringComparison.OrdinalIgnoreCase)) >= 0)
            {
                count++;
                at += Keyword.Length;
            }

            rewards[i] = count;
        }
    }
}
