namespace Rlhf.Kernels.Ppo;

/// <summary>
/// Scalars of one PPO clipped-surrogate evaluation over the valid tokens (TRL's PPOTrainer.loss statistics).
/// </summary>
/// <param name="Loss">masked_mean(max(−A·ratio, −A·clip(ratio, 1−ε, 1+ε))).</param>
/// <param name="ClipFraction">masked_mean(−A·clip(ratio) &gt; −A·ratio): the share of tokens whose clipped term wins.</param>
/// <param name="ApproxKl">½·masked_mean((newLogp − oldLogp)²).</param>
/// <param name="MeanRatio">masked_mean(ratio).</param>
/// <param name="ValidCount">Number of tokens with mask ≠ 0; all statistics are 0 when it is 0.</param>
public readonly record struct PolicyLossStats(float Loss, float ClipFraction, float ApproxKl, float MeanRatio, int ValidCount);

/// <summary>Scalars of one clipped value-loss evaluation over the valid tokens.</summary>
/// <param name="Loss">½·masked_mean(max((v−R)², (clip(v, vOld−εv, vOld+εv) − R)²)).</param>
/// <param name="ClipFraction">masked_mean((vclipped − R)² &gt; (v − R)²).</param>
/// <param name="MeanSquaredError">masked_mean((v − R)²), TRL's "val/error".</param>
/// <param name="ValidCount">Number of tokens with mask ≠ 0; all statistics are 0 when it is 0.</param>
public readonly record struct ValueLossStats(float Loss, float ClipFraction, float MeanSquaredError, int ValidCount);
