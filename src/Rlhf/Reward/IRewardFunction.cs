namespace Rlhf.Reward;

/// <summary>A scalar reward per (prompt, response) pair: a reward model, a classifier's wanted-class logit, or any user function.</summary>
public interface IRewardFunction
{
    /// <summary>Writes one reward per pair into <paramref name="rewards"/> (length = prompts.Count = responses.Count).</summary>
    void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards);
}
