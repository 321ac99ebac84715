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
/// on the trainable buffer (the LoRA adapter when one is attached, else every base weight). Runs on a
/// <see cref="TransformerModel"/> (the CPU path) or on any <see cref="ICausalLmBackend"/> (e.g. a CUDA device), where
/// the same steps run with the backend's kernels and only the loss and the gradient norm come back.
/// </summary>
public sealed class CausalLmTrainer
{
    private readonly TransformerModel? model;
    private readonly ICausalLmBackend? backend;
    private readonly IParameterOptimizer? optimizer;
    private readonly AdamW? backendAdamW;
    private int[] targets = [];
    private float[] weights = [], dlogits = [];

    public CausalLmTrainer(TransformerModel model, LearningRateSchedule schedule, float maxGradNorm = 1f, IParameterOptimizer? optimizer = null)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        if (!(maxGradNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxGradNorm), maxGradNorm, "must be positive.");
        MaxGradNorm = maxGradNorm;
        this.optimizer = optimizer ?? new AdamW();
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
        backendAdamW = new AdamW(weightDecay: weightDecay);
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
        if (backend != null) return StepOnBackend(microBatches, backend);
        var model = this.model!;
        int v = model.Config.VocabSize;
        model.ZeroGradients();
        double loss = 0;
        float scale = 1f / microBatches.Count;
        for (int i = 0; i < microBatches.Count; i++)
        {
            var mb = microBatches[i] ?? throw new ArgumentException($"micro-batch {i} is null.", nameof(microBatches));
            int n = mb.Batch * mb.Seq;
            if (mb.LossMask != null && mb.LossMask.Length != n) throw new ArgumentException($"micro-batch {i}: LossMask has {mb.LossMask.Length} elements, needs {n}.", nameof(microBatches));
            if (targets.Length < n) targets = new int[n];
            if (weights.Length < n) weights = new float[n];
            if (dlogits.Length < n * v) dlogits = new float[(long)n * v > Array.MaxLength ? throw new ArgumentException("micro-batch too large.", nameof(microBatches)) : n * v];
            model.Forward(mb.Tokens, mb.Mask, mb.Batch, mb.Seq);
            CausalLmLoss.ShiftTargets(mb.Tokens, mb.Mask, mb.LossMask, targets.AsSpan(0, n), weights.AsSpan(0, n), mb.Batch, mb.Seq);
            var dl = dlogits.AsSpan(0, n * v);
            loss += scale * CausalLmLoss.Forward(model.Logits, targets.AsSpan(0, n), weights.AsSpan(0, n), dl, n, v, scale);
            model.Backward(dl, default);
        }

        var (p, g) = model.Adapter is { } a ? (a.Parameters, a.Gradients) : (model.Parameters, model.Gradients);
        double norm = GradientClipping.ClipGlobalNorm([g], MaxGradNorm);
        float lr = Schedule.At(StepCount);
        optimizer!.Step(p, g, lr);
        StepCount++;
        return new TrainStepResult(StepCount, (float)loss, norm, lr);
    }

    /// <summary>The same step as the model path, each operation on the backend.</summary>
    private TrainStepResult StepOnBackend(IReadOnlyList<TokenBatch> microBatches, ICausalLmBackend lm)
    {
        lm.ZeroGradients();
        double loss = 0;
        float scale = 1f / microBatches.Count;
        for (int i = 0; i < microBatches.Count; i++)
        {
            var mb = microBatches[i] ?? throw new ArgumentException($"micro-batch {i} is null.", nameof(microBatches));
            int n = mb.Batch * mb.Seq;
            if (mb.LossMask != null && mb.LossMask.Length != n) throw new ArgumentException($"micro-batch {i}: LossMask has {mb.LossMask.Length} elements, needs {n}.", nameof(microBatches));
            if (targets.Length < n) targets = new int[n];
            if (weights.Length < n) weights = new float[n];
            lm.Forward(mb.Tokens, mb.Mask, mb.Batch, mb.Seq);
            CausalLmLoss.ShiftTargets(mb.Tokens, mb.Mask, mb.LossMask, targets.AsSpan(0, n), weights.AsSpan(0, n), mb.Batch, mb.Seq);
            loss += scale * lm.CrossEntropy(targets.AsSpan(0, n), weights.AsSpan(0, n), scale);
            lm.Backward();
        }

        double norm = lm.ClipGradients(MaxGradNorm);
        float lr = Schedule.At(StepCount);
        var o = backendAdamW!;
        lm.AdamWStep(StepCount + 1, lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay);
        StepCount++;
        return new TrainStepResult(StepCount, (float)loss, norm, lr);
    }
}
