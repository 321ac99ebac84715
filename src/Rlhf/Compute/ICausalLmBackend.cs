using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// One causal-LM training step on some compute device: the model's parameters, gradients, optimizer state and
/// activations live with the backend; spans cross only at upload/download and as step inputs (tokens, masks,
/// targets) and the loss. <see cref="CpuCausalLm"/> is today's <see cref="TransformerModel"/>;
/// <see cref="DeviceTransformer"/> runs on an ILGPU accelerator (CUDA with cuBLAS). Both use the model's
/// <see cref="ParameterLayout"/>, so buffers compare 1:1.
/// </summary>
public interface ICausalLmBackend : IDisposable
{
    TransformerConfig Config { get; }

    ParameterLayout Layout { get; }

    /// <summary>Copies a full parameter buffer (<see cref="Layout"/> order) in.</summary>
    void UploadParameters(ReadOnlySpan<float> source);

    void DownloadParameters(Span<float> destination);

    void DownloadGradients(Span<float> destination);

    /// <summary>Logits [batch·seq·vocab] of the last forward, or dLogits once <see cref="CrossEntropy"/> has run.</summary>
    void DownloadLogits(Span<float> destination);

    void ZeroGradients();

    /// <summary>tokens, mask [batch, seq] → activations and logits (as <see cref="TransformerModel.Forward"/>).</summary>
    void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq);

    /// <summary>Weighted cross-entropy of the last forward's logits (as <see cref="CausalLmLoss.Forward"/>), keeping dLogits for <see cref="Backward"/>.</summary>
    float CrossEntropy(ReadOnlySpan<int> targets, ReadOnlySpan<float> weights);

    /// <summary>Adds the gradients of the last <see cref="CrossEntropy"/> into the gradient buffer.</summary>
    void Backward();

    /// <summary>One AdamW step over every parameter (PyTorch semantics, as <c>Rlhf.Kernels.Optim.AdamW.Step</c>).</summary>
    void AdamWStep(int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01);
}

/// <summary>Opens a backend by the name users pass as <c>--device</c>.</summary>
public static class CausalLmBackends
{
    /// <summary>
    /// "cpu": <see cref="CpuCausalLm"/>; "cuda": <see cref="DeviceTransformer"/> on the first CUDA device with cuBLAS
    /// (throws <see cref="InvalidOperationException"/> saying what is missing when no driver, device or cuBLAS is found).
    /// </summary>
    public static ICausalLmBackend Create(string device, TransformerConfig config, bool allowTf32 = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        switch (device)
        {
            case "cpu":
                return new CpuCausalLm(config);
            case "cuda":
                var kernelDevice = Rlhf.Kernels.Device.KernelDevice.CreateCuda();
                try
                {
                    return new DeviceTransformer(kernelDevice, config, allowTf32, ownsDevice: true);
                }
                catch
                {
                    kernelDevice.Dispose();
                    throw;
                }

            default:
                throw new ArgumentException($"device must be 'cpu' or 'cuda', got '{device}'.", nameof(device));
        }
    }
}
