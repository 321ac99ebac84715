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

/// <summary>Metrics of one epoch (held-out values NaN when nothing is held out).</summary>
public readonly record struct ClassifierEpochMetrics(
    int Epoch, int Steps, double TrainLoss, double TrainAccuracy, double HeldOutLoss, double HeldOutAccuracy, double Seconds);

/// <summary>What a classifier training run produced.</summary>
public sealed record ClassifierTrainingResult(IReadOnlyList<ClassifierEpochMetrics> Epochs, int TrainCount, int HeldOutCount, IReadOnlyList<string> Labels);
