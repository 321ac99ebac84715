namespace Rlhf.Reward;

public interface IRewardFunction
{
    void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards);
}
