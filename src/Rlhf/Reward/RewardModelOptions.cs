using Rlhf.Model;
using Rlhf.Training;

namespace Rlhf.Reward;

/// <summary>
/// Reward-model training settings, modelled on TRL's RewardConfig. Defaults: learning rate 1e-4 with linear
/// decay and no warmup, 1 epoch, 8 pairs per batch (16 rows: chosen then rejected), max length 512 tokens,
/// 10% held out, seed 42, full fine-tuning (no LoRA), margins ignored, right padding, no weight decay, gradient
/// norm clipped at 1.
/// </summary>
public sealed record RewardModelOptions
{
    public float LearningRate { get; init; } = 1e-4f;

    public int Epochs { get; init; } = 1;

    /// <summary>Pairs per optimizer step.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens per row (BOS + prompt + response, truncated from the left).</summary>
    public int MaxLength { get; init; } = 512;

    /// <summary>Fraction of pairs held out for evaluation, chosen by <see cref="Seed"/>; 0 holds none out.</summary>
    public double EvalFraction { get; init; } = 0.1;

    /// <summary>Seeds the split, the shuffling per epoch, the head (and a fresh trunk's) initialisation and LoRA's A.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>LoRA on the trunk (base frozen, head still trained); null trains every trunk weight.</summary>
    public LoraConfig? Lora { get; init; }

    /// <summary>Subtract each pair's margin inside the sigmoid (Llama-2's margin loss).</summary>
    public bool UseMargins { get; init; }

    public PaddingSide Padding { get; init; } = PaddingSide.Right;

    public float WeightDecay { get; init; }

    public float MaxGradNorm { get; init; } = 1f;

    public int WarmupSteps { get; init; }

    public DecayKind Decay { get; init; } = DecayKind.Linear;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid setting.</summary>
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

/// <summary>Metrics of one epoch: mean training loss/accuracy over its batches, and the held-out ones after it (NaN when nothing is held out).</summary>
public readonly record struct RewardEpochMetrics(
    int Epoch, int Steps, double TrainLoss, double TrainAccuracy, double HeldOutLoss, double HeldOutAccuracy, double Seconds);
