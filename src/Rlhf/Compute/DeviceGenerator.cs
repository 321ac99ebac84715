using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// <see cref="Generator"/> on a <see cref="DeviceTransformer"/>: the KV cache and the forward stay on the device, only
/// the last position's logits [batch, vocab] come down per step, and the engine's own <see cref="DecodingLoop"/> picks
/// the tokens, so the same options and seed give the same tokens as on the CPU (up to fp32 rounding of the logits).
/// </summary>
public sealed class DeviceGenerator : IDecodeStep, IDisposable
{
    private readonly DeviceTransformer model;
    private readonly DecodingLoop loop = new();
    private DeviceKvCache? cache;
    private bool useAdapter;

    public DeviceGenerator(DeviceTransformer model) => this.model = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>As <see cref="Generator.Generate"/>; <c>options.UseAdapter</c> = false decodes with the frozen base.</summary>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        useAdapter = options.UseAdapter;
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

        model.ForwardCached(tokens, mask, promptLen, cache, logits, lastOnly: true, useAdapter);
    }

    void IDecodeStep.Step(int[] tokens, float[] mask, Span<float> logits) =>
        model.ForwardCached(tokens, mask, 1, cache!, logits, lastOnly: true, useAdapter);

    public void Dispose()
    {
        cache?.Dispose();
        cache = null;
    }
}
