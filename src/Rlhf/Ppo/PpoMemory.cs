namespace Rlhf.Ppo;

/// <summary>
/// Bytes of parameters, gradients and optimizer state a PPO setup uses (activations excluded). Under LoRA the engine
/// still allocates a base-sized gradient array, but PPO never writes it (only the adapter's gradients are cleared
/// and accumulated), so its pages are never touched and it is not counted.
/// </summary>
/// <param name="PolicyBytes">The policy's base weights.</param>
/// <param name="ReferenceBytes">A separate reference copy (0 under LoRA: the base is shared).</param>
/// <param name="TrainableBytes">Adapter weights + gradients under LoRA; base gradients under full fine-tuning.</param>
/// <param name="OptimizerBytes">AdamW moments of the trained weights and the value head.</param>
/// <param name="ValueHeadBytes">Value head weights and gradients.</param>
public readonly record struct PpoMemory(long PolicyBytes, long ReferenceBytes, long TrainableBytes, long OptimizerBytes, long ValueHeadBytes)
{
    /// <summary>Everything except activations, counting the base's gradient buffer only when it trains.</summary>
    public long TotalBytes => PolicyBytes + ReferenceBytes + TrainableBytes + OptimizerBytes + ValueHeadBytes;

    /// <summary>Counts the buffers of <paramref name="trainer"/>.</summary>
    public static PpoMemory Measure(PpoTrainer trainer)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        const long f = sizeof(float);
        var p = trainer.Policy;
        long policy = p.Parameters.LongLength * f;
        long reference = ReferenceEquals(trainer.Reference, p) ? 0 : trainer.Reference.Parameters.LongLength * f;
        long trainable = p.Adapter is { } a ? (a.Parameters.LongLength + a.Gradients.LongLength) * f : p.Gradients.LongLength * f;
        long trained = trainer.TrainableParameters.Length;
        long head = trainer.ValueHead.Parameters.LongLength;
        return new PpoMemory(policy, reference, trainable, 2 * (trained + head) * f, 2 * head * f);
    }

    public override string ToString() =>
        $"policy {PolicyBytes / 1048576.0:F2} MiB, reference {ReferenceBytes / 1048576.0:F2} MiB, trainable {TrainableBytes / 1048576.0:F2} MiB, optimizer {OptimizerBytes / 1048576.0:F2} MiB, value head {ValueHeadBytes / 1024.0:F1} KiB, total {TotalBytes / 1048576.0:F2} MiB";
}
