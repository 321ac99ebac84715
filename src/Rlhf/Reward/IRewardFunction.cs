namespace Rlhf.Reward;

/// <summary>A scalar reward per (prompt, response): a reward model, or a classifier's logit of the wanted class.</summary>
public interface IRewardFunction
{
    /// <summary>Writes the reward of (prompts[i], responses[i]) into rewards[i]; the three lengths must be equal.</summary>
    void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards);
}
