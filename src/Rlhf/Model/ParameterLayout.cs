namespace Rlhf.Model;

/// <summary>One named tensor inside a flat buffer: HF-style name, shape (row-major) and element offset.</summary>
public sealed record ParameterTensor(string Name, int[] Shape, int Offset, int Length);

/// <summary>
/// A projection whose weight rows are stored back to back so one GEMM computes every part, e.g. Llama's
/// q|k|v (q_proj, k_proj, v_proj are adjacent in the flat buffer) and gate|up; GPT-2's c_attn is already fused.
/// Conv1D groups (GPT-2) store the weight [in, out] and compute y = x·W + b; Linear groups (Llama) store
/// [out, in] and compute y = x·Wᵀ. <see cref="Parts"/> are the upstream modules, each a column range of the output.
/// </summary>
public sealed record LinearGroup(int WeightOffset, int BiasOffset, int In, int Out, bool Conv1D, LinearPart[] Parts);

/// <summary>An upstream module inside a <see cref="LinearGroup"/>: its HF module name and output column range.</summary>
public sealed record LinearPart(string ModuleName, int ColumnOffset, int Out);

/// <summary>Offsets of one block's tensors in the flat parameter buffer (-1 where the family has none).</summary>
public sealed record LayerLayout(
    int Norm1Weight, int Norm1Bias, LinearGroup Qkv, LinearGroup AttnOut,
    int Norm2Weight, int Norm2Bias, LinearGroup Up, LinearGroup Down);

/// <summary>
/// Where every tensor of a model lives in its single flat float buffer (gradients use the same layout).
/// Storage convention: GPT-2 keeps HF's Conv1D [in, out] weights (a safetensors load is a plain copy);
/// Llama keeps nn.Linear [out, in]. Embeddings are [vocab, d]; GPT-2 positions are [context, d].
/// </summary>
public sealed class ParameterLayout
{
    private readonly List<ParameterTensor> tensors = new();
    private readonly Dictionary<string, ParameterTensor> byName = new(StringComparer.Ordinal);
    private int total;

    public ParameterLayout(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int d = config.ModelDim, v = config.VocabSize, f = config.HiddenDim;
        var layers = new LayerLayout[config.LayerCount];
        if (config.Family == ModelFamily.Gpt2)
        {
            TokenEmbedding = Add("transformer.wte.weight", v, d);
            PositionEmbedding = Add("transformer.wpe.weight", config.ContextLength, d);
            for (int i = 0; i < config.LayerCount; i++)
            {
                string p = $"transformer.h.{i}.";
                int ln1w = Add(p + "ln_1.weight", d), ln1b = Add(p + "ln_1.bias", d);
                var qkv = Conv1D(p + "attn.c_attn", d, 3 * d);
                var proj = Conv1D(p + "attn.c_proj", d, d);
                int ln2w = Add(p + "ln_2.weight", d), ln2b = Add(p + "ln_2.bias", d);
                var fc = Conv1D(p + "mlp.c_fc", d, f);
                var down = Conv1D(p + "mlp.c_proj", f, d);
                layers[i] = new LayerLayout(ln1w, ln1b, qkv, proj, ln2w, ln2b, fc, down);
            }

            FinalNormWeight = Add("transformer.ln_f.weight", d);
            FinalNormBias = Add("transformer.ln_f.bias", d);
            LmHead = TokenEmbedding;
        }
        else
        {
            int hd = config.HeadDim, q = config.HeadCount * hd, kv = config.KvHeadCount * hd;
            TokenEmbedding = Add("model.embed_tokens.weight", v, d);
            PositionEmbedding = -1;
            for (int i = 0; i < config.LayerCount; i++)
            {
                string p = $"model.layers.{i}.";
                int n1 = Add(p + "input_layernorm.weight", d);
                var qkv = LinearRows(d, (p + "self_attn.q_proj", q), (p + "self_attn.k_proj", kv), (p + "self_attn.v_proj", kv));
                var o = LinearRows(q, (p + "self_attn.o_proj", d));
                int n2 = Add(p + "post_attention_layernorm.weight", d);
                var up = LinearRows(d, (p + "mlp.gate_proj", f), (p + "mlp.up_proj", f));
                var down = LinearRows(f, (p + "mlp.down_proj", d));
                layers[i] = new LayerLayout(n1, -1, qkv, o, n2, -1, up, down);
            }

            FinalNormWeight = Add("model.norm.weight", d);
            FinalNormBias = -1;
            LmHead = config.TiedEmbeddings ? TokenEmbedding : Add("lm_head.weight", v, d);
        }

        Layers = layers;
    }

    public TransformerConfig Config { get; }

    /// <summary>
    /// <see cref="TotalLength"/> of <paramref name="config"/>'s layout, computed without building it (in double, so
    /// absurd configs neither overflow nor allocate): loaders compare it with the values a file holds first.
    /// </summary>
    public static double CountParameters(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        double d = config.ModelDim, v = config.VocabSize, f = config.HiddenDim, layers = config.LayerCount;
        if (config.Family == ModelFamily.Gpt2)
        {
            double layer = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * f + f) + (f * d + d);
            return v * d + (double)config.ContextLength * d + layers * layer + 2 * d;
        }

        double q = (double)config.HeadCount * config.HeadDim, kv = (double)config.KvHeadCount * config.HeadDim;
        double block = d + d * (q + 2 * kv) + q * d + d + d * 2 * f + f * d;
        return v * d + layers * block + d + (config.TiedEmbeddings ? 0 : v * d);
    }

    /// <summary>Total number of floats in the parameter (and gradient) buffer.</summary>
    public int TotalLength => total;

    /// <summary>Every tensor in buffer order. A tied LM head is not listed twice.</summary>
    public IReadOnlyList<ParameterTensor> Tensors => tensors;

    public IReadOnlyList<LayerLayout> Layers { get; }

    public int TokenEmbedding { get; }

    public int PositionEmbedding { get; }

    public int FinalNormWeight { get; }

    public int FinalNormBias { get; }

    /// <summary>Offset of the [vocab, d] LM head matrix (equals <see cref="TokenEmbedding"/> when tied).</summary>
    public int LmHead { get; }

    /// <summary>1 for every element of a matrix (embeddings, projections, LM head), 0 for vectors (biases, norm weights): HF's default weight-decay split.</summary>
    public float[] WeightDecayMask()
    {
        var mask = new float[total];
        foreach (var t in tensors)
        {
            if (t.Shape.Length >= 2) mask.AsSpan(t.Offset, t.Length).Fill(1f);
        }

        return mask;
    }

    /// <summary>Looks a tensor up by its HF name.</summary>
    public bool TryGet(string name, out ParameterTensor tensor) => byName.TryGetValue(name, out tensor!);

    /// <summary>The tensor called <paramref name="name"/>; throws <see cref="ArgumentException"/> naming it when absent.</summary>
    public ParameterTensor Get(string name) =>
        byName.TryGetValue(name, out var t) ? t : throw new ArgumentException($"model has no tensor '{name}'.", nameof(name));

    private int Add(string name, params int[] shape)
    {
        long length = 1;
        foreach (int s in shape) length *= s;
        if (total + length > Array.MaxLength) throw new ArgumentException($"model too large for one flat buffer at '{name}'.");
        var t = new ParameterTensor(name, shape, total, (int)length);
        tensors.Add(t);
        byName.Add(name, t);
        total += (int)length;
        return t.Offset;
    }

    private LinearGroup Conv1D(string module, int inDim, int outDim)
    {
        int w = Add(module + ".weight", inDim, outDim);
        int b = Add(module + ".bias", outDim);
        return new LinearGroup(w, b, inDim, outDim, true, [new LinearPart(module, 0, outDim)]);
    }

    private LinearGroup LinearRows(int inDim, params (string Module, int Out)[] parts)
    {
        int first = total, column = 0;
        var result = new LinearPart[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            Add(parts[i].Module + ".weight", parts[i].Out, inDim);
            result[i] = new LinearPart(parts[i].Module, column, parts[i].Out);
            column += parts[i].Out;
        }

        return new LinearGroup(first, -1, inDim, column, false, result);
    }
}
