using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Training;

namespace Rlhf.Classification;

/// <summary>
/// Sequence-classifier training settings (HF Trainer-like). Defaults: learning rate 1e-4, linear decay, no warmup,
/// 1 epoch, 16 texts per batch, max length 256 tokens, 10% held out, seed 42, full fine-tuning, right padding,
/// no weight decay, gradient norm clipped at 1.
/// </summary>
public sealed record ClassifierOptions
{
    public float LearningRate { get; init; } = 1e-4f;

    public int Epochs { get; init; } = 1;

    public int BatchSize { get; init; } = 16;

    public int MaxLength { get; init; } = 256;

    public double EvalFraction { get; init; } = 0.1;

    public ulong Seed { get; init; } = 42;

    public LoraConfig? Lora { get; init; }

    public PaddingSide Padding { get; init; } = PaddingSide.Right;

    public float WeightDecay { get; init; }

    public float MaxGradNorm { get; init; } = 1f;

    public int WarmupSteps { get; init; }

    public DecayKind Decay { get; init; } = DecayKind.Linear;

    public void Validate()
    {
        if (!(LearningRate > 0f) || float.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be positive and finite.");
        if (Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "must be positive.");
        if (BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be positive.");
        if (MaxLength < 2) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "must be at least 2.");
        if (!(EvalFraction >= 0 && EvalFraction < 1)) throw new ArgumentOutOfRangeException(nameof(EvalFraction), EvalFraction, "must be in [0, 1).");
        if (!(WeightDecay >= 0f)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "must be >= 0.");
        if (!(MaxGradNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), MaxGradNorm, "must be positive.");
        if (WarmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, "must be >= 0.");
    }
}

/// <summary>Metrics of one epoch (held-out values NaN when nothing is held out).</summary>
public readonly record struct ClassifierEpochMetrics(
    int Epoch, int Steps, double TrainLoss, double TrainAccuracy, double HeldOutLoss, double HeldOutAccuracy, double Seconds);

/// <summary>What a classifier training run produced.</summary>
public sealed record ClassifierTrainingResult(IReadOnlyList<ClassifierEpochMetrics> Epochs, int TrainCount, int HeldOutCount, IReadOnlyList<string> Labels);
