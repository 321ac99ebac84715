using Rlhf.IO;

namespace Rlhf.Ppo;

/// <summary>Per-token KL estimator for the reward penalty (TRL's kl_penalty).</summary>
public enum KlEstimator
{
    /// <summary>k1 = log π − log π_ref (TRL "kl", the default): unbiased, can be negative per token.</summary>
    K1,

    /// <summary>k3 = (r − 1) − log r with r = π_ref/π (TRL "k3"): unbiased and ≥ 0.</summary>
    K3,
}

/// <summary>
/// Every PPO setting in one record. Defaults are TRL's PPOConfig (classic PPOTrainer) where the tutorial is silent:
/// lr 1.41e-5, init KL coef 0.2 adaptive with target 6 and horizon 10000, γ 1, λ 0.95, clip 0.2, value clip 0.2,
/// vf_coef 0.1, 4 PPO epochs, k1 estimator, no gradient clipping, no early stopping (target_kl 1 when on), ratio_threshold 10.
/// The entropy bonus (c2, not in TRL) defaults to 0.01 as in OpenAI baselines.
/// </summary>
public sealed record PpoOptions
{
    /// <summary>Prompts per iteration (TRL batch_size).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Rollouts per optimizer step (TRL mini_batch_size); at most <see cref="BatchSize"/> (a last, smaller minibatch takes the remainder).</summary>
    public int MiniBatchSize { get; init; } = 4;

    /// <summary>Passes over the batch per iteration, each with a fresh seeded permutation (TRL ppo_epochs).</summary>
    public int PpoEpochs { get; init; } = 4;

    /// <summary>AdamW peak learning rate (TRL learning_rate).</summary>
    public float LearningRate { get; init; } = 1.41e-5f;

    public float AdamBeta1 { get; init; } = 0.9f;

    public float AdamBeta2 { get; init; } = 0.999f;

    public float AdamEpsilon { get; init; } = 1e-8f;

    /// <summary>Decoupled weight decay (0: TRL uses torch Adam).</summary>
    public float WeightDecay { get; init; }

    /// <summary>Global gradient-norm limit; 0 turns clipping off (TRL max_grad_norm None).</summary>
    public float MaxGradNorm { get; init; }

    /// <summary>Initial (or fixed) KL coefficient β (TRL init_kl_coef).</summary>
    public float InitialKlCoef { get; init; } = 0.2f;

    /// <summary>Adapt β toward <see cref="TargetKl"/> (Ziegler et al.; TRL adap_kl_ctrl).</summary>
    public bool AdaptiveKl { get; init; } = true;

    /// <summary>Target of the mean per-sequence KL for the adaptive controller (TRL's <c>target</c>). A config key
    /// <c>target_kl</c> sets this property, whereas in TRL <c>target_kl</c> is the early-stop threshold,
    /// <see cref="EarlyStopKl"/> here: translate TRL configs by meaning, not by name.</summary>
    public float TargetKl { get; init; } = 6f;

    /// <summary>Horizon of the adaptive controller in samples (TRL horizon).</summary>
    public float KlHorizon { get; init; } = 10000f;

    public KlEstimator KlEstimator { get; init; } = KlEstimator.K1;

    /// <summary>Discount γ of GAE.</summary>
    public float Gamma { get; init; } = 1f;

    /// <summary>λ of GAE.</summary>
    public float Lambda { get; init; } = 0.95f;

    /// <summary>ε of the clipped ratio (TRL cliprange).</summary>
    public float ClipRange { get; init; } = 0.2f;

    /// <summary>ε of the clipped value loss (TRL cliprange_value); +∞ turns value clipping off.</summary>
    public float ValueClipRange { get; init; } = 0.2f;

    /// <summary>c1, weight of the value loss (TRL vf_coef).</summary>
    public float ValueCoef { get; init; } = 0.1f;

    /// <summary>c2, weight of the entropy bonus (loss −= c2·mean entropy).</summary>
    public float EntropyCoef { get; init; } = 0.01f;

    /// <summary>Stop the iteration's updates once a minibatch's approximate KL ½·mean((new − old)²) exceeds
    /// 1.5·<see cref="EarlyStopKl"/>, checked after every minibatch (TRL early_stopping/target_kl, which tests its
    /// policykl, mean(old − new): the same to first order for small updates).</summary>
    public bool EarlyStopping { get; init; }

    public float EarlyStopKl { get; init; } = 1f;

    /// <summary>
    /// Skip a minibatch whose mean probability ratio, masked_mean(exp(log π − log π_old)) over its valid response tokens,
    /// exceeds this (TRL ratio_threshold: "skip mini-batches with high PPO ratios that can cause loss spikes"); +∞ never
    /// skips. As in TRL the skipped minibatch's loss is zeroed: no gradient of its policy, value or entropy terms reaches
    /// the weights, its PolicyLoss and ValueLoss count as 0 in the iteration's means (its entropy, clip fraction and
    /// approximate KL are still reported, and still feed <see cref="EarlyStopping"/>), and it is counted in
    /// <see cref="PpoMetrics.SkippedMinibatches"/>. Also as in TRL, which still calls optimizer.step() on the zero loss,
    /// the AdamW step runs with zero gradients: it counts in the step number and decays the moments, so the weights move
    /// only by the earlier steps' momentum and by <see cref="WeightDecay"/> (not at all for a first step with no decay).
    /// The mean is computed where the update runs, so one within rounding of the threshold may be decided differently
    /// on the CPU and on a device.
    /// </summary>
    public float RatioThreshold { get; init; } = 10f;

    /// <summary>Divide scores by their running standard deviation (TRL use_score_scaling).</summary>
    public bool ScoreScaling { get; init; }

    /// <summary>With <see cref="ScoreScaling"/>, also subtract the running mean (TRL use_score_norm).</summary>
    public bool ScoreNormalization { get; init; }

    /// <summary>Clip scores to ±this after scaling; 0 = no clipping (TRL score_clip None).</summary>
    public float ScoreClip { get; init; }

    /// <summary>
    /// Subtracted from the score of a response that hits <see cref="MaxNewTokens"/> without EOS (the tokenizer's, or an id of
    /// the policy's config.json eos_token_id list) (0 = off; TRL missing_eos_penalty).
    /// </summary>
    public float MissingEosPenalty { get; init; }

    /// <summary>Response length limit.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sampling temperature for rollouts and for every log-probability (must be &gt; 0).</summary>
    public float Temperature { get; init; } = 1f;

    public int TopK { get; init; }

    public float TopP { get; init; } = 1f;

    /// <summary>Iterations to run (the tutorial's example: 20,000 steps).</summary>
    public int MaxSteps { get; init; } = 20000;

    /// <summary>Stop once an iteration's mean score reaches this (null: never).</summary>
    public float? RewardThreshold { get; init; }

    /// <summary>Checkpoint every N iterations (0 = only at the end).</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>Seed of every random choice (generation, permutations, data order, adapter and value-head init).</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>LoRA rank; 0 means full fine-tuning with a separate frozen reference copy.</summary>
    public int LoraRank { get; init; } = 8;

    /// <summary>Which executor samples rollouts: the engine (default) or ONNX Runtime (needs LoRA, see <see cref="Ppo.RolloutBackend"/>).</summary>
    public RolloutBackend RolloutBackend { get; init; } = RolloutBackend.Engine;

    /// <summary>
    /// Where the policy update (PPO epochs) runs: "cpu", "cuda" (the first NVIDIA GPU) or "ilgpu-cpu" (the device code
    /// on ILGPU's CPU accelerator, for tests and debugging). With the engine rollout backend the rollouts are decoded
    /// there too (tokens picked on the host by the same sampler and seeds); scoring and advantages stay on the CPU.
    /// </summary>
    public string Device { get; init; } = "cpu";

    public float LoraAlpha { get; init; } = 16f;

    /// <summary>LoRA target modules (null: PEFT's defaults for the family).</summary>
    public IReadOnlyList<string>? LoraTargets { get; init; }

    /// <summary>Throws <see cref="InvalidInputException"/> naming the first bad option (before any work starts).</summary>
    public void Validate()
    {
        Positive(BatchSize, nameof(BatchSize));
        Positive(MiniBatchSize, nameof(MiniBatchSize));
        if (MiniBatchSize > BatchSize) throw new InvalidInputException($"MiniBatchSize {MiniBatchSize} exceeds BatchSize {BatchSize}.");
        Positive(PpoEpochs, nameof(PpoEpochs));
        Positive(MaxNewTokens, nameof(MaxNewTokens));
        Positive(MaxSteps, nameof(MaxSteps));
        NonNegative(CheckpointEvery, nameof(CheckpointEvery));
        NonNegative(LoraRank, nameof(LoraRank));
        if (RolloutBackend == RolloutBackend.Ort && LoraRank == 0)
            throw new InvalidInputException("RolloutBackend ort feeds the LoRA adapter to the exported graph each iteration; it needs LoraRank > 0.");
        if (!Rlhf.Compute.CausalLmBackends.IsKnown(Device)) throw new InvalidInputException($"Device must be cpu or cuda, got '{Device}'.");
        NonNegative(TopK, nameof(TopK));
        Finite(LearningRate, nameof(LearningRate), strictlyPositive: true);
        Finite(AdamEpsilon, nameof(AdamEpsilon), strictlyPositive: true);
        Finite(WeightDecay, nameof(WeightDecay));
        Finite(MaxGradNorm, nameof(MaxGradNorm));
        Finite(InitialKlCoef, nameof(InitialKlCoef));
        Finite(TargetKl, nameof(TargetKl), strictlyPositive: true);
        Finite(KlHorizon, nameof(KlHorizon), strictlyPositive: true);
        Finite(ClipRange, nameof(ClipRange));
        if (float.IsNaN(ValueClipRange) || ValueClipRange < 0) throw new InvalidInputException($"ValueClipRange must be >= 0 (or +Infinity), got {ValueClipRange}.");
        Finite(ValueCoef, nameof(ValueCoef));
        Finite(EntropyCoef, nameof(EntropyCoef));
        Finite(EarlyStopKl, nameof(EarlyStopKl), strictlyPositive: true);
        if (!(RatioThreshold > 0)) throw new InvalidInputException($"RatioThreshold must be positive (or +Infinity to never skip), got {RatioThreshold}.");
        Finite(ScoreClip, nameof(ScoreClip));
        Finite(MissingEosPenalty, nameof(MissingEosPenalty));
        Finite(Temperature, nameof(Temperature), strictlyPositive: true);
        Finite(LoraAlpha, nameof(LoraAlpha), strictlyPositive: true);
        Unit(AdamBeta1, nameof(AdamBeta1));
        Unit(AdamBeta2, nameof(AdamBeta2));
        if (!(Gamma >= 0 && Gamma <= 1)) throw new InvalidInputException($"Gamma must be in [0, 1], got {Gamma}.");
        if (!(Lambda >= 0 && Lambda <= 1)) throw new InvalidInputException($"Lambda must be in [0, 1], got {Lambda}.");
        if (!(TopP > 0 && TopP <= 1)) throw new InvalidInputException($"TopP must be in (0, 1], got {TopP}.");
        if (RewardThreshold is float t && !float.IsFinite(t)) throw new InvalidInputException($"RewardThreshold must be finite, got {t}.");
    }

    private static void Positive(int v, string name)
    {
        if (v <= 0) throw new InvalidInputException($"{name} must be positive, got {v}.");
    }

    private static void NonNegative(int v, string name)
    {
        if (v < 0) throw new InvalidInputException($"{name} must be >= 0, got {v}.");
    }

    private static void Finite(float v, string name, bool strictlyPositive = false)
    {
        if (!float.IsFinite(v) || v < 0 || (strictlyPositive && v == 0))
            throw new InvalidInputException($"{name} must be {(strictlyPositive ? "positive" : "non-negative")} and finite, got {v}.");
    }

    private static void Unit(float v, string name)
    {
        if (!(v >= 0 && v < 1)) throw new InvalidInputException($"{name} must be in [0, 1), got {v}.");
    }
}
