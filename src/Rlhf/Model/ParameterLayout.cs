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
        var buffer = new BufferPlacement(this);
        (TokenEmbedding, PositionEmbedding) = Embeddings(buffer, config);
        var layers = new LayerLayout[config.LayerCount];
        for (int i = 0; i < layers.Length; i++) layers[i] = Block(buffer, config, i);
        Layers = layers;
        (FinalNormWeight, FinalNormBias, LmHead) = Tail(buffer, config, TokenEmbedding);
    }

    public TransformerConfig Config { get; }

    /// <summary>
    /// <see cref="TotalLength"/> of <paramref name="config"/>'s layout, computed without building it (in double, so
    /// absurd configs neither overflow nor allocate): loaders compare it with the values a file holds first.
    /// </summary>
    public static double CountParameters(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var count = new CountPlacement();
        Embeddings(count, config);
        // Every block has the same shapes: one is counted, so a layer count of billions costs no time either.
        double beforeBlocks = count.Total;
        Block(count, config, 0);
        double block = count.Total - beforeBlocks;
        Tail(count, config, tokenEmbedding: 0);
        return count.Total + ((double)config.LayerCount - 1) * block;
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

    // The tensors before the blocks, one block and those after, in buffer order: the one description of each family.
    private static (int TokenEmbedding, int PositionEmbedding) Embeddings(TensorPlacement p, TransformerConfig c)
    {
        long d = c.ModelDim, v = c.VocabSize;
        return c.Family == ModelFamily.Gpt2
            ? (p.Add("transformer.wte.weight", v, d), p.Add("transformer.wpe.weight", c.ContextLength, d))
            : (p.Add("model.embed_tokens.weight", v, d), -1);
    }

    private static LayerLayout Block(TensorPlacement p, TransformerConfig c, int i) =>
        c.Family == ModelFamily.Gpt2 ? Gpt2Block(p, c, $"transformer.h.{i}.") : LlamaBlock(p, c, $"model.layers.{i}.");

    private static LayerLayout Gpt2Block(TensorPlacement p, TransformerConfig c, string prefix)
    {
        long d = c.ModelDim, f = c.HiddenDim;
        int ln1w = p.Add(prefix + "ln_1.weight", d), ln1b = p.Add(prefix + "ln_1.bias", d);
        var qkv = p.Conv1D(prefix + "attn.c_attn", d, 3 * d);
        var proj = p.Conv1D(prefix + "attn.c_proj", d, d);
        int ln2w = p.Add(prefix + "ln_2.weight", d), ln2b = p.Add(prefix + "ln_2.bias", d);
        var fc = p.Conv1D(prefix + "mlp.c_fc", d, f);
        var down = p.Conv1D(prefix + "mlp.c_proj", f, d);
        return new LayerLayout(ln1w, ln1b, qkv, proj, ln2w, ln2b, fc, down);
    }

    private static LayerLayout LlamaBlock(TensorPlacement p, TransformerConfig c, string prefix)
    {
        long d = c.ModelDim, f = c.HiddenDim, hd = c.HeadDim, q = c.HeadCount * hd, kv = c.KvHeadCount * hd;
        int n1 = p.Add(prefix + "input_layernorm.weight", d);
        var qkv = p.LinearRows(d, (prefix + "self_attn.q_proj", q), (prefix + "self_attn.k_proj", kv), (prefix + "self_attn.v_proj", kv));
        var o = p.LinearRows(q, (prefix + "self_attn.o_proj", d));
        int n2 = p.Add(prefix + "post_attention_layernorm.weight", d);
        var up = p.LinearRows(d, (prefix + "mlp.gate_proj", f), (prefix + "mlp.up_proj", f));
        var down = p.LinearRows(f, (prefix + "mlp.down_proj", d));
        return new LayerLayout(n1, -1, qkv, o, n2, -1, up, down);
    }

    private static (int NormWeight, int NormBias, int LmHead) Tail(TensorPlacement p, TransformerConfig c, int tokenEmbedding)
    {
        long d = c.ModelDim, v = c.VocabSize;
        if (c.Family == ModelFamily.Gpt2) return (p.Add("transformer.ln_f.weight", d), p.Add("transformer.ln_f.bias", d), tokenEmbedding);
        int norm = p.Add("model.norm.weight", d);
        return (norm, -1, c.TiedEmbeddings ? tokenEmbedding : p.Add("lm_head.weight", v, d));
    }

    private int Add(string name, long[] shape)
    {
        double length = 1;
        foreach (long s in shape) length *= s;
        if (total + length > Array.MaxLength) throw new ArgumentException($"model too large for one flat buffer at '{name}'.");
        var t = new ParameterTensor(name, Array.ConvertAll(shape, s => (int)s), total, (int)length);
        tensors.Add(t);
        byName.Add(name, t);
        total += (int)length;
        return t.Offset;
    }

    /// <summary>Gives each tensor the next range of this layout's buffer.</summary>
    private sealed class BufferPlacement(ParameterLayout layout) : TensorPlacement
    {
        public override int Add(string name, params long[] shape) => layout.Add(name, shape);
    }

    /// <summary>Only sums sizes, in double: a config no buffer could hold still gets a number to compare.</summary>
    private sealed class CountPlacement : TensorPlacement
    {
        public double Total { get; private set; }

        public override int Add(string name, params long[] shape)
        {
            double length = 1;
            foreach (long s in shape) length *= s;
            Total += length;
            return 0;
        }
    }
}
