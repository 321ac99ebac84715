using Rlhf.Reward;

namespace Rlhf.Classification;

/// <summary>Sequence-classifier training settings: the shared <see cref="HeadTrainingOptions"/> with 16 texts per batch and
/// max length 256 tokens.</summary>
public sealed record ClassifierOptions : HeadTrainingOptions
{
    public ClassifierOptions()
    {
        BatchSize = 16;
        MaxLength = 256;
    }
}

/// <summary>What a classifier training run produced.</summary>
public sealed record ClassifierTrainingResult(IReadOnlyList<HeadEpochMetrics> Epochs, int TrainCount, int HeldOutCount, IReadOnlyList<string> Labels);
