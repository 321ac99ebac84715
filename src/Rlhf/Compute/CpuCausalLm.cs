using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>The CPU backend: <see cref="TransformerModel"/>, <see cref="CausalLmLoss"/> and the span AdamW, unchanged.</summary>
public sealed class CpuCausalLm : ICausalLmBackend
{
    private float[] dLogits = [];
    private float[] firstMoment = [], secondMoment = [];
    private bool haveForward, haveDLogits;

    public CpuCausalLm(TransformerConfig config) => Model = new TransformerModel(config);

    /// <summary>The wrapped model (parameters and gradients are its buffers).</summary>
    public TransformerModel Model { get; }

    public TransformerConfig Config => Model.Config;

    public ParameterLayout Layout => Model.Layout;

    public void UploadParameters(ReadOnlySpan<float> source)
    {
        if (source.Length != Model.Parameters.Length) throw new ArgumentException($"source has {source.Length} elements, the layout {Model.Parameters.Length}.", nameof(source));
        source.CopyTo(Model.Parameters);
    }

    public void DownloadParameters(Span<float> destination) => Copy(Model.Parameters, destination, nameof(destination));

    public void DownloadGradients(Span<float> destination) => Copy(Model.Gradients, destination, nameof(destination));

    public void DownloadLogits(Span<float> destination)
    {
        if (!haveForward) throw new InvalidOperationException("no forward yet.");
        int len = Model.Logits.Length;
        Copy(haveDLogits ? dLogits.AsSpan(0, len) : Model.Logits, destination, nameof(destination));
    }

    public void ZeroGradients() => Model.ZeroGradients();

    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq)
    {
        Model.Forward(tokens, mask, batch, seq);
        haveForward = true;
        haveDLogits = false;
    }

    public float CrossEntropy(ReadOnlySpan<int> targets, ReadOnlySpan<float> weights)
    {
        if (!haveForward || haveDLogits) throw new InvalidOperationException("CrossEntropy needs a fresh Forward.");
        int n = Model.Logits.Length / Config.VocabSize;
        if (targets.Length != n) throw new ArgumentException($"targets has {targets.Length} elements, needs {n}.", nameof(targets));
        if (weights.Length != n) throw new ArgumentException($"weights has {weights.Length} elements, needs {n}.", nameof(weights));
        if (dLogits.Length < Model.Logits.Length) dLogits = new float[Model.Logits.Length];
        float loss = CausalLmLoss.Forward(Model.Logits, targets, weights, dLogits, n, Config.VocabSize);
        haveDLogits = true;
        return loss;
    }

    public void Backward()
    {
        if (!haveDLogits) throw new InvalidOperationException("Backward needs Forward then CrossEntropy.");
        Model.Backward(dLogits.AsSpan(0, Model.Logits.Length), default);
        haveDLogits = false;
        haveForward = false;
    }

    public void AdamWStep(int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01)
    {
        if (firstMoment.Length == 0)
        {
            firstMoment = new float[Model.Parameters.Length];
            secondMoment = new float[Model.Parameters.Length];
        }

        Rlhf.Kernels.Optim.AdamW.Step(Model.Parameters, Model.Gradients, firstMoment, secondMoment, step, learningRate, beta1, beta2, epsilon, weightDecay);
    }

    public void Dispose()
    {
    }

    private static void Copy(ReadOnlySpan<float> source, Span<float> destination, string name)
    {
        if (destination.Length != source.Length) throw new ArgumentException($"{name} has {destination.Length} elements, needs {source.Length}.", name);
        source.CopyTo(destination);
    }
}
