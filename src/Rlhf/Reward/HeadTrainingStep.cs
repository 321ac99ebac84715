using Rlhf.Model;
using Rlhf.Training;

namespace Rlhf.Reward;

/// <summary>
/// The optimizer side of training a trunk + <see cref="ScoreHead"/>: zeroes both gradient buffers, clips their
/// global norm together, and steps AdamW on the trunk's trainable buffer (the LoRA adapter when attached, else every
/// base weight) and on the head.
/// </summary>
internal sealed class HeadTrainingStep
{
    private readonly TransformerModel model;
    private readonly ScoreHead head;
    private readonly AdamW trunkOptimizer;
    private readonly AdamW headOptimizer;
    private readonly float maxGradNorm;
    private readonly LearningRateSchedule schedule;

    public HeadTrainingStep(TransformerModel model, ScoreHead head, float weightDecay, float maxGradNorm, LearningRateSchedule schedule)
    {
        this.model = model;
        this.head = head;
        this.maxGradNorm = maxGradNorm;
        this.schedule = schedule;
        trunkOptimizer = new AdamW(weightDecay: weightDecay, decayMask: model.Adapter is null ? model.Layout.WeightDecayMask() : null);
        var headMask = new float[head.Parameters.Length];
        headMask.AsSpan(0, head.Outputs * head.ModelDim).Fill(1f);
        headOptimizer = new AdamW(weightDecay: weightDecay, decayMask: headMask);
    }

    public int StepCount { get; private set; }

    public void ZeroGradients()
    {
        model.ZeroGradients();
        Array.Clear(head.Gradients);
    }

    /// <summary>Clips and applies the accumulated gradients; returns the pre-clip global norm and the learning rate used.</summary>
    public (double GradNorm, float LearningRate) Apply()
    {
        var (p, g) = model.Adapter is { } a ? (a.Parameters, a.Gradients) : (model.Parameters, model.Gradients);
        double norm = GradientClipping.ClipGlobalNorm([g, head.Gradients], maxGradNorm);
        float lr = schedule.At(StepCount);
        trunkOptimizer.Step(p, g, lr);
        headOptimizer.Step(head.Parameters, head.Gradients, lr);
        StepCount++;
        return (norm, lr);
    }
}
