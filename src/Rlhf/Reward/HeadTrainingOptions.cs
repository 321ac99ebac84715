using Rlhf.Model;
using Rlhf.Training;

namespace Rlhf.Reward;

/// <summary>
/// Settings every trunk + <see cref="ScoreHead"/> trainer shares (reward model, classifier), HF Trainer-like.
/// Defaults: learning rate 1e-4 with linear decay and no warmup, 1 epoch, 10% held out, seed 42, full fine-tuning
/// (no LoRA), right padding, no weight decay, gradient norm clipped at 1; batch size and max length per stage.
/// </summary>
public abstract record HeadTrainingOptions
{
    public float LearningRate { get; init; } = 1e-4f;

    public int Epochs { get; init; } = 1;

    /// <summary>Examples (pairs for a reward model, texts for a classifier) per optimizer step.</summary>
    public int BatchSize { get; init; }

    /// <summary>Tokens per row (truncated from the left).</summary>
    public int MaxLength { get; init; }

    /// <summary>Fraction held out for evaluation, chosen by <see cref="Seed"/>; 0 holds none out.</summary>
    public double EvalFraction { get; init; } = 0.1;

    /// <summary>Seeds the split, the shuffling per epoch, the head (and a fresh trunk's) initialisation and LoRA's A.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>LoRA on the trunk (base frozen, head still trained); null trains every trunk weight.</summary>
    public LoraConfig? Lora { get; init; }

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

    internal HeadTrainingSettings Settings => new(Epochs, BatchSize, LearningRate, WarmupSteps, Decay, WeightDecay, MaxGradNorm, EvalFraction, Seed);
}
