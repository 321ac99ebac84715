namespace Rlhf.Reward;

/// <summary>
/// Metrics of one epoch of a trunk + head trainer (reward model or classifier): mean training loss/accuracy over its
/// batches, and the held-out ones after it (NaN when nothing is held out).
/// </summary>
public readonly record struct HeadEpochMetrics(
    int Epoch, int Steps, double TrainLoss, double TrainAccuracy, double HeldOutLoss, double HeldOutAccuracy, double Seconds);
