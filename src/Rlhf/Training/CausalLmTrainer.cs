using Rlhf.Compute;
using Rlhf.Model;

namespace Rlhf.Training;

/// <summary>A micro-batch of token rows: tokens/mask [batch, seq]; LossMask (optional) marks the tokens to predict (e.g. responses).</summary>
public sealed record TokenBatch(int[] Tokens, float[] Mask, float[]? LossMask, int Batch, int Seq);

/// <summary>What one optimizer step did.</summary>
public readonly record struct TrainStepResult(int Step, float Loss, double GradNorm, float LearningRate);

/// <summary>
/// Pretraining / SFT loop: per step, forward + cross-entropy + backward over each micro-batch (gradient
/// accumulation: each micro-batch's mean token loss is weighted 1/count), global-norm clipping, then the optimizer
/// on the trainable buffer (the LoRA adapter when one is attached, else every base weight). One loop over an
/// <see cref="ICausalLmBackend"/>: a <see cref="TransformerModel"/> trains through <see cref="CpuCausalLm"/>, a GPU
/// through its device backend, with the same steps; only the loss and the gradient norm come back.
/// </summary>
public sealed class CausalLmTrainer
{
    private readonly ICausalLmBackend backend;
    private readonly AdamW adamW;
    private int[] targets = [];
    private float[] weights = [];

    /// <summary>Trains <paramref name="model"/> in place on the CPU (its adapter when one is attached, else every weight).</summary>
    public CausalLmTrainer(TransformerModel model, LearningRateSchedule schedule, float maxGradNorm = 1f, float weightDecay = 0f)
        : this(new CpuCausalLm(model ?? throw new ArgumentNullException(nameof(model))), schedule, maxGradNorm, weightDecay)
    {
    }

    /// <summary>
    /// Trains on <paramref name="backend"/> (its trained weights: the adapter when attached, else the base) with
    /// <see cref="AdamW"/>'s default betas and epsilon and <paramref name="weightDecay"/> on every trained weight.
    /// </summary>
    public CausalLmTrainer(ICausalLmBackend backend, LearningRateSchedule schedule, float maxGradNorm = 1f, float weightDecay = 0f)
    {
        this.backend = backend ?? throw new ArgumentNullException(nameof(backend));
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        if (!(maxGradNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxGradNorm), maxGradNorm, "must be positive.");
        MaxGradNorm = maxGradNorm;
        adamW = new AdamW(weightDecay: weightDecay);
    }

    public LearningRateSchedule Schedule { get; }

    public float MaxGradNorm { get; }

    /// <summary>Optimizer steps taken.</summary>
    public int StepCount { get; private set; }

    /// <summary>One optimizer step over <paramref name="microBatches"/> (gradient accumulation).</summary>
    public TrainStepResult Step(IReadOnlyList<TokenBatch> microBatches)
    {
        ArgumentNullException.ThrowIfNull(microBatches);
        if (microBatches.Count == 0) throw new ArgumentException("no micro-batches.", nameof(microBatches));
        backend.ZeroGradients();
        double loss = 0;
        float scale = 1f / microBatches.Count;
        for (int i = 0; i < microBatches.Count; i++)
        {
            var mb = microBatches[i] ?? throw new ArgumentException($"micro-batch {i} is null.", nameof(microBatches));
            int n = mb.Batch * mb.Seq;
            if (mb.LossMask != null && mb.LossMask.Length != n) throw new ArgumentException($"micro-batch {i}: LossMask has {mb.LossMask.Length} elements, needs {n}.", nameof(microBatches));
            if ((long)n * backend.Config.VocabSize > Array.MaxLength) throw new ArgumentException($"micro-batch {i}: {n} tokens × vocabulary {backend.Config.VocabSize} logits is too large.", nameof(microBatches));
            if (targets.Length < n) targets = new int[n];
            if (weights.Length < n) weights = new float[n];
            backend.Forward(mb.Tokens, mb.Mask, mb.Batch, mb.Seq);
            CausalLmLoss.ShiftTargets(mb.Tokens, mb.Mask, mb.LossMask, targets.AsSpan(0, n), weights.AsSpan(0, n), mb.Batch, mb.Seq);
            loss += scale * backend.CrossEntropy(targets.AsSpan(0, n), weights.AsSpan(0, n), scale);
            backend.Backward();
        }

        double norm = backend.ClipGradients(MaxGradNorm);
        float lr = Schedule.At(StepCount);
        backend.AdamWStep(StepCount + 1, lr, adamW.Beta1, adamW.Beta2, adamW.Eps, adamW.WeightDecay);
        StepCount++;
        return new TrainStepResult(StepCount, (float)loss, norm, lr);
    }
}
