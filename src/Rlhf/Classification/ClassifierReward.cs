using Rlhf.Reward;

namespace Rlhf.Classification;

/// <summary>A classifier as a reward: the logit of the wanted class (e.g. "not hate") on each response; prompts are not read.</summary>
public sealed class ClassifierReward(SequenceClassifier classifier, int classIndex) : IRewardFunction
{
    public SequenceClassifier Classifier { get; } = classifier ?? throw new ArgumentNullException(nameof(classifier));

    public int ClassIndex { get; } = classIndex;

    public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        if (prompts.Count != responses.Count) throw new ArgumentException($"{prompts.Count} prompts but {responses.Count} responses.", nameof(responses));
        if (rewards.Length != responses.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {responses.Count}.", nameof(rewards));
        int c = Classifier.Classes;
        var z = new float[responses.Count * c];
        Classifier.Logits(responses, z);
        for (int i = 0; i < rewards.Length; i++) rewards[i] = z[i * c + ClassIndex];
    }
}
