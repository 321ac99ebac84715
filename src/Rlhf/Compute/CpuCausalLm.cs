using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>The CPU backend: <see cref="TransformerModel"/>, <see cref="CausalLmLoss"/> and the span AdamW, unchanged.</summary>
public sealed class CpuCausalLm : ICausalLmBackend
{
    private float[] dLogits = [];
    private float[] firstMoment = [], secondMoment = [];
    private bool haveForward, haveDLogits;

    public CpuCausalLm(TransformerConfig config) => Model = new TransformerModel(config);

    /// <summary>Trains <paramref name="model"/> in place (its parameters, adapter and gradients are this backend's).</summary>
    public CpuCausalLm(TransformerModel model) => Model = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>The wrapped model (parameters and gradients are its buffers).</summary>
    public TransformerModel Model { get; }

    public TransformerConfig Config => Model.Config;

    public ParameterLayout Layout => Model.Layout;

    public bool TrainsBase => Model.TrainsBase;

    private float[] TrainableParameters => Model.Adapter?.Parameters ?? Model.Parameters;

    private float[] TrainableGradients => Model.Adapter?.Gradients ?? Model.Gradients;

    public void UploadParameters(ReadOnlySpan<float> source)
    {
        if (source.Length != Model.Parameters.Length) throw new ArgumentException($"source has {source.Length} elements, the layout {Model.Parameters.Length}.", nameof(source));
        source.CopyTo(Model.Parameters);
    }

    public void DownloadParameters(Span<float> destination) => Copy(Model.Parameters, destination, nameof(destination));

    public void DownloadGradients(Span<float> destination) => Copy(Model.Gradients, destination, nameof(destination));

    /// <summary>Attaches a copy of <paramref name="adapter"/> to the model (or nothing when it is the model's own).</summary>
    public void AttachAdapter(LoraAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (ReferenceEquals(Model.Adapter, adapter)) return;
        adapter.Parameters.CopyTo(Model.AttachAdapter(adapter.Config, 0).Parameters, 0);
        firstMoment = secondMoment = [];
        haveForward = false;
    }

    public void DownloadAdapter(Span<float> destination)
    {
        var a = Model.Adapter ?? throw new InvalidOperationException("no adapter attached.");
        Copy(a.Parameters, destination, nameof(destination));
    }

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

    public float CrossEntropy(ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, float gradScale = 1f)
    {
        if (!haveForward || haveDLogits) throw new InvalidOperationException("CrossEntropy needs a fresh Forward.");
        int n = Model.Logits.Length / Config.VocabSize;
        if (targets.Length != n) throw new ArgumentException($"targets has {targets.Length} elements, needs {n}.", nameof(targets));
        if (weights.Length != n) throw new ArgumentException($"weights has {weights.Length} elements, needs {n}.", nameof(weights));
        if (dLogits.Length < Model.Logits.Length) dLogits = new float[Model.Logits.Length];
        float loss = CausalLmLoss.Forward(Model.Logits, targets, weights, dLogits, n, Config.VocabSize, gradScale);
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

    public double ClipGradients(float maxNorm)
    {
        if (!(maxNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "must be positive.");
        var g = TrainableGradients;
        float norm = Rlhf.Kernels.Optim.GradientClipping.GlobalNorm(g);
        if (float.IsFinite(norm) && norm > maxNorm) Rlhf.Kernels.Optim.GradientClipping.ClipByGlobalNorm(g, maxNorm);
        return norm;
    }

    public void AdamWStep(int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01)
    {
        var p = TrainableParameters;
        if (firstMoment.Length != p.Length)
        {
            firstMoment = new float[p.Length];
            secondMoment = new float[p.Length];
        }

        Rlhf.Kernels.Optim.AdamW.Step(p, TrainableGradients, firstMoment, secondMoment, step, learningRate, beta1, beta2, epsilon, weightDecay);
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
