using System.Diagnostics;
using Rlhf.Model;
using Rlhf.Training;

namespace Rlhf.Reward;

/// <summary>The optimiser settings a trunk + head trainer shares (reward model and classifier).</summary>
internal readonly record struct HeadTrainingSettings(
    int Epochs, int BatchSize, float LearningRate, int WarmupSteps, DecayKind Decay, float WeightDecay, float MaxGradNorm, double EvalFraction, ulong Seed);

/// <summary>
/// The epoch loop of a trunk + <see cref="ScoreHead"/> trainer: a seeded train/held-out split, a fresh seeded shuffle
/// per epoch, minibatches through <c>step</c>, and held-out evaluation after each epoch.
/// </summary>
internal static class HeadTrainingLoop
{
    /// <summary>One minibatch: forward, loss, backward and optimizer step; returns the batch's mean loss and accuracy.</summary>
    public delegate (double Loss, double Accuracy) BatchStep(HeadTrainingStep step, ReadOnlySpan<int> batch);

    /// <summary>Trains on examples 0..<paramref name="count"/>; returns the split and each epoch's metrics.</summary>
    public static (int[] Train, int[] HeldOut, List<HeadEpochMetrics> Epochs) Run(
        TransformerModel model, ScoreHead head, int count, HeadTrainingSettings s, BatchStep step,
        Func<int[], (double Loss, double Accuracy)> evaluate, Action<HeadEpochMetrics>? onEpoch)
    {
        var epochs = new List<HeadEpochMetrics>(s.Epochs);
        var (train, heldOut) = DataSplit.Split(count, s.EvalFraction, s.Seed);
        int stepsPerEpoch = (train.Length + s.BatchSize - 1) / s.BatchSize;
        var schedule = new LearningRateSchedule(s.LearningRate, s.WarmupSteps, Math.Max(stepsPerEpoch * s.Epochs, s.WarmupSteps + 1), s.Decay);
        var trainer = new HeadTrainingStep(model, head, s.WeightDecay, s.MaxGradNorm, schedule);
        var rng = new Xoshiro256(s.Seed ^ 0x53687566UL);
        var order = (int[])train.Clone();
        for (int e = 1; e <= s.Epochs; e++)
        {
            var clock = Stopwatch.StartNew();
            DataSplit.Shuffle(order, ref rng);
            double lossSum = 0, accSum = 0;
            for (int start = 0; start < order.Length; start += s.BatchSize)
            {
                int b = Math.Min(s.BatchSize, order.Length - start);
                var (loss, acc) = step(trainer, order.AsSpan(start, b));
                lossSum += loss * b;
                accSum += acc * b;
            }

            var (hl, ha) = heldOut.Length > 0 ? evaluate(heldOut) : (double.NaN, double.NaN);
            var m = new HeadEpochMetrics(e, trainer.StepCount, lossSum / order.Length, accSum / order.Length, hl, ha, clock.Elapsed.TotalSeconds);
            epochs.Add(m);
            onEpoch?.Invoke(m);
        }

        return (train, heldOut, epochs);
    }
}
