using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// One causal-LM training step on some compute device: the model's parameters, gradients, optimizer state and
/// activations live with the backend; spans cross only at upload/download and as step inputs (tokens, masks,
/// targets) and the loss. <see cref="CpuCausalLm"/> is today's <see cref="TransformerModel"/>;
/// <see cref="DeviceTransformer"/> runs on an ILGPU accelerator (CUDA with cuBLAS). Both use the model's
/// <see cref="ParameterLayout"/>, so buffers compare 1:1. With a LoRA adapter attached only the adapter trains.
/// </summary>
public interface ICausalLmBackend : IDisposable
{
    TransformerConfig Config { get; }

    ParameterLayout Layout { get; }

    /// <summary>True when the base weights train (no adapter attached).</summary>
    bool TrainsBase { get; }

    /// <summary>Copies a full parameter buffer (<see cref="Layout"/> order) in.</summary>
    void UploadParameters(ReadOnlySpan<float> source);

    void DownloadParameters(Span<float> destination);

    /// <summary>Copies the base weights' gradients out (zeros for the frozen base under LoRA).</summary>
    void DownloadGradients(Span<float> destination);

    /// <summary>
    /// Attaches a LoRA adapter made for this layout (e.g. by <see cref="TransformerModel.AttachAdapter"/>): its current
    /// weights are copied in, the base is frozen, and <see cref="AdamWStep"/> / <see cref="ClipGradients"/> act on the adapter.
    /// </summary>
    void AttachAdapter(LoraAdapter adapter);

    /// <summary>Copies the attached adapter's weights out (<see cref="LoraAdapter.Parameters"/> layout).</summary>
    void DownloadAdapter(Span<float> destination);

    /// <summary>Logits [batch·seq·vocab] of the last forward, or dLogits once <see cref="CrossEntropy"/> has run.</summary>
    void DownloadLogits(Span<float> destination);

    /// <summary>Zeroes the trained weights' gradients.</summary>
    void ZeroGradients();

    /// <summary>tokens, mask [batch, seq] → activations and logits (as <see cref="TransformerModel.Forward"/>, adapter on).</summary>
    void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq);

    /// <summary>
    /// Weighted cross-entropy of the last forward's logits (as <see cref="CausalLmLoss.Forward"/>): returns
    /// Σ w·(lse − z[target]) / Σ w, keeping dLogits · <paramref name="gradScale"/> for <see cref="Backward"/>.
    /// </summary>
    float CrossEntropy(ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, float gradScale = 1f);

    /// <summary>Adds the gradients of the last <see cref="CrossEntropy"/> into the trained weights' gradients.</summary>
    void Backward();

    /// <summary>
    /// Global L2 norm of the trained weights' gradients; when finite and above <paramref name="maxNorm"/> they are scaled
    /// by maxNorm / (norm + 1e−6) (as <c>Rlhf.Training.GradientClipping.ClipGlobalNorm</c>). Returns the norm before clipping.
    /// </summary>
    double ClipGradients(float maxNorm);

    /// <summary>One AdamW step over the trained weights (PyTorch semantics, as <c>Rlhf.Kernels.Optim.AdamW.Step</c>).</summary>
    void AdamWStep(int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01);
}

/// <summary>Opens a backend by the name users pass as <c>--device</c>.</summary>
public static class CausalLmBackends
{
    /// <summary>The test/debug device name: <see cref="DeviceTransformer"/> on ILGPU's CPU accelerator (a simulated GPU, ~80× slower than "cpu").</summary>
    public const string IlgpuCpu = "ilgpu-cpu";

    /// <summary>True for the names <see cref="Create"/> accepts: "cpu", "cuda" and the test device "ilgpu-cpu".</summary>
    public static bool IsKnown(string device) => device is "cpu" or "cuda" or IlgpuCpu;

    /// <summary>
    /// "cpu": <see cref="CpuCausalLm"/>; "cuda": <see cref="DeviceTransformer"/> on the first CUDA device with cuBLAS
    /// (throws <see cref="DeviceUnavailableException"/> saying what is missing: the driver, a device or cuBLAS);
    /// "ilgpu-cpu": <see cref="DeviceTransformer"/> on ILGPU's CPU accelerator, for tests and debugging the device path.
    /// </summary>
    public static ICausalLmBackend Create(string device, TransformerConfig config, bool allowTf32 = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        if (device == "cpu") return new CpuCausalLm(config);
        var kernelDevice = OpenDevice(device);
        try
        {
            return new DeviceTransformer(kernelDevice, config, allowTf32, ownsDevice: true);
        }
        catch (InvalidOperationException e) when (device == "cuda" && e.Message.Contains("cuBLAS", StringComparison.Ordinal))
        {
            kernelDevice.Dispose();
            throw new DeviceUnavailableException($"--device cuda: a CUDA device was found but cuBLAS was not: {e.Message}", e);
        }
        catch
        {
            kernelDevice.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The accelerator behind a device name other than "cpu": the first CUDA device, or ILGPU's CPU accelerator for
    /// "ilgpu-cpu". Throws <see cref="DeviceUnavailableException"/> when CUDA is asked for and no driver or device exists.
    /// </summary>
    public static Rlhf.Kernels.Device.KernelDevice OpenDevice(string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        switch (device)
        {
            case IlgpuCpu:
                return Rlhf.Kernels.Device.KernelDevice.CreateCpu();
            case "cuda":
                if (!System.Runtime.InteropServices.NativeLibrary.TryLoad("libcuda.so.1", out nint driver))
                    throw new DeviceUnavailableException("--device cuda: no NVIDIA driver found (libcuda.so.1 could not be loaded); install the driver or use --device cpu.");
                System.Runtime.InteropServices.NativeLibrary.Free(driver);
                try
                {
                    return Rlhf.Kernels.Device.KernelDevice.CreateCuda();
                }
                catch (Exception e) when (e is InvalidOperationException or NotSupportedException or DllNotFoundException or TypeInitializationException)
                {
                    throw new DeviceUnavailableException($"--device cuda: the NVIDIA driver is present but no usable CUDA device was found ({e.Message}).", e);
                }

            default:
                throw new ArgumentException($"device must be 'cpu' or 'cuda' (or the test device '{IlgpuCpu}'), got '{device}'.", nameof(device));
        }
    }
}
