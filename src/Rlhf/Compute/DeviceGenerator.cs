using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// <see cref="Generator"/> on a <see cref="DeviceTransformer"/>: the KV cache and the forward stay on the device, and so
/// does the pick (greedy, plain sampling and top-k/top-p: <see cref="SamplingDeviceKernels"/>, from uniforms the engine's
/// <see cref="DecodingLoop"/> draws), so only a token and its log-probability per row come down per step. The same
/// options and seed give the same tokens as on the CPU (up to fp32 rounding of the logits and of exp).
/// </summary>
public sealed class DeviceGenerator : IDecodeSampler, IDisposable
{
    private readonly DeviceTransformer model;
    private readonly bool ownsModel;
    private readonly DecodingLoop loop = new();
    private DeviceKvCache? cache;
    private bool useAdapter, pickHere;
    private SamplingDeviceKernels? sampling;
    private MemoryBuffer1D<double, Stride1D.Dense>? uniforms;
    private MemoryBuffer1D<int, Stride1D.Dense>? tokens;
    private MemoryBuffer1D<float, Stride1D.Dense>? logProbs;
    private MemoryBuffer1D<float, Stride1D.Dense>? scratchProbs;
    private MemoryBuffer1D<int, Stride1D.Dense>? scratchTokens;

    /// <summary>Pick the tokens on the device (the default); false downloads the logits every step and picks on the host.</summary>
    public bool SampleOnDevice { get; set; } = true;

    /// <param name="model">The model to decode with (its current weights and adapter).</param>
    /// <param name="ownsModel">Dispose <paramref name="model"/> (and the device it owns) with this generator.</param>
    public DeviceGenerator(DeviceTransformer model, bool ownsModel = false)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.ownsModel = ownsModel;
    }

    /// <summary>
    /// A generator on the device named <paramref name="device"/> ("cuda" or the test device "ilgpu-cpu", as
    /// <see cref="CausalLmBackends.OpenDevice"/>) holding a copy of <paramref name="source"/>'s weights and, when it has
    /// one, its adapter; it owns that device. Later changes to <paramref name="source"/> are not seen (attach an adapter
    /// with <see cref="Model"/>.AttachAdapter).
    /// </summary>
    /// <exception cref="DeviceUnavailableException">CUDA was asked for and no driver, device or cuBLAS was found.</exception>
    public static DeviceGenerator Open(string device, TransformerModel source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var kernelDevice = CausalLmBackends.OpenDevice(device);
        DeviceTransformer? model = null;
        try
        {
            model = new DeviceTransformer(kernelDevice, source.Config, ownsDevice: true);
            model.UploadParameters(source.Parameters);
            if (source.Adapter is { } adapter) model.AttachAdapter(adapter);
            return new DeviceGenerator(model, ownsModel: true);
        }
        catch (InvalidOperationException e) when (device == "cuda" && e.Message.Contains("cuBLAS", StringComparison.Ordinal))
        {
            if (model is null) kernelDevice.Dispose();
            else model.Dispose();
            throw new DeviceUnavailableException($"--device cuda: a CUDA device was found but cuBLAS was not: {e.Message}", e);
        }
        catch
        {
            if (model is null) kernelDevice.Dispose();
            else model.Dispose();
            throw;
        }
    }

    /// <summary>The model decoded with.</summary>
    public DeviceTransformer Model => model;

    /// <summary>As <see cref="Generator.Generate"/>; <c>options.UseAdapter</c> = false decodes with the frozen base.</summary>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        useAdapter = options.UseAdapter;
        pickHere = SampleOnDevice;
        return loop.Run(prompts, options, model.Config.VocabSize, model.Config.ContextLength, this);
    }

    void IDecodeStep.Prefill(int[] tokens, float[] mask, int batch, int promptLen, int total, Span<float> logits)
    {
        var c = model.Config;
        if (cache is null || cache.Batch != batch || cache.Capacity < total)
        {
            int capacity = Math.Max(total, Math.Min(c.ContextLength, cache?.Capacity ?? 0));
            cache?.Dispose();
            cache = new DeviceKvCache(model, batch, capacity);
        }
        else
        {
            cache.Reset();
        }

        model.ForwardCached(tokens, mask, promptLen, cache, pickHere ? default : logits, lastOnly: true, useAdapter);
    }

    void IDecodeStep.Step(int[] tokens, float[] mask, Span<float> logits) =>
        model.ForwardCached(tokens, mask, 1, cache!, pickHere ? default : logits, lastOnly: true, useAdapter);

    bool IDecodeSampler.Picks(GenerationOptions options) => pickHere;

    void IDecodeSampler.Pick(ReadOnlySpan<double> draws, GenerationOptions options, Span<int> picked, Span<float> pickedLogProbs)
    {
        var c = cache ?? throw new InvalidOperationException("Pick before Prefill.");
        int batch = c.Batch, v = model.Config.VocabSize;
        var acc = model.Accelerator;
        if (uniforms is null || uniforms.Length < batch)
        {
            uniforms?.Dispose();
            tokens?.Dispose();
            logProbs?.Dispose();
            uniforms = acc.Allocate1D<double>(batch);
            tokens = acc.Allocate1D<int>(batch);
            logProbs = acc.Allocate1D<float>(batch);
        }

        bool filtered = SamplingDeviceKernels.Filters(options.Temperature, options.TopK, options.TopP);
        long scratch = filtered ? (long)batch * SamplingDeviceKernels.ScratchPerRow(v) : 0;
        if (filtered && (scratchProbs is null || scratchProbs.Length < scratch))
        {
            // Once per (batch, vocab): the sort's candidates can be the whole vocabulary (top-p near 1 on a flat row).
            scratchProbs?.Dispose();
            scratchTokens?.Dispose();
            scratchProbs = acc.Allocate1D<float>(scratch);
            scratchTokens = acc.Allocate1D<int>(scratch);
        }

        sampling ??= new SamplingDeviceKernels(model.Device);
        uniforms.View.SubView(0, batch).CopyFromCPU(ref MemoryMarshal.GetReference(draws), batch);
        sampling.Pick(c.Logits.View.SubView(0, (long)batch * v), uniforms.View, tokens!.View, logProbs!.View, batch, v, options.Temperature,
            options.TopK, options.TopP, filtered ? scratchProbs!.View : default, filtered ? scratchTokens!.View : default);
        acc.Synchronize();
        tokens.View.SubView(0, batch).CopyToCPU(ref MemoryMarshal.GetReference(picked), batch);
        logProbs.View.SubView(0, batch).CopyToCPU(ref MemoryMarshal.GetReference(pickedLogProbs), batch);
    }

    public void Dispose()
    {
        cache?.Dispose();
        cache = null;
        uniforms?.Dispose();
        tokens?.Dispose();
        logProbs?.Dispose();
        uniforms = null;
        tokens = null;
        logProbs = null;
        scratchProbs?.Dispose();
        scratchTokens?.Dispose();
        scratchProbs = null;
        scratchTokens = null;
        if (ownsModel) model.Dispose();
    }
}
