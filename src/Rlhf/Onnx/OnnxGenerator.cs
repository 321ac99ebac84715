using Rlhf.Model;

namespace Rlhf.Onnx;

/// <summary>
/// <see cref="Generator"/> on ONNX Runtime: the same decoding loop and sampler (temperature, top-k, top-p, EOS, stop
/// sequences, seeded Xoshiro256) over logits from an exported causal LM with its KV cache, so equal logits and seeds
/// give equal tokens. <see cref="GenerationOptions.UseAdapter"/> is not consulted: feed or clear LoRA inputs with
/// <see cref="OnnxCausalLm.UseAdapter"/>.
/// </summary>
public sealed class OnnxGenerator
{
    private readonly OnnxCausalLm model;
    private readonly DecodingLoop loop = new();

    /// <summary>A generator limited to the context length the exporter recorded in the model.</summary>
    public OnnxGenerator(OnnxCausalLm model)
        : this(model, model?.ContextLength ?? throw new ArgumentException("the model records no context length; pass it explicitly.", nameof(model)))
    {
    }

    public OnnxGenerator(OnnxCausalLm model, int contextLength)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(contextLength);
        ContextLength = contextLength;
    }

    /// <summary>The longest prompt + continuation accepted (the exported model's context length).</summary>
    public int ContextLength { get; }

    /// <summary>Generates up to <c>options.MaxNewTokens</c> tokens after each left-padded prompt; see <see cref="Generator.Generate"/>.</summary>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options) =>
        loop.Run(prompts, options, model.VocabSize, ContextLength, model);
}
