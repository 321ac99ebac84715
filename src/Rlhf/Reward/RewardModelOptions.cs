namespace Rlhf.Reward;

/// <summary>
/// Reward-model training settings, modelled on TRL's RewardConfig: the shared <see cref="HeadTrainingOptions"/> with
/// 8 pairs per batch (16 rows: chosen then rejected), max length 512 tokens (BOS + prompt + response), margins ignored.
/// </summary>
public sealed record RewardModelOptions : HeadTrainingOptions
{
    public RewardModelOptions()
    {
        BatchSize = 8;
        MaxLength = 512;
    }

    /// <summary>Subtract each pair's margin inside the sigmoid (Llama-2's margin loss).</summary>
    public bool UseMargins { get; init; }
}
