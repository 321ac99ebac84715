namespace Rlhf.Model;

/// <summary>Which upstream architecture the math and tensor names follow.</summary>
public enum ModelFamily
{
    /// <summary>GPT-2: learned positions, LayerNorm, GELU(tanh) MLP, biases, Conv1D weights, tied LM head.</summary>
    Gpt2,

    /// <summary>Llama: RoPE, RMSNorm, SwiGLU MLP, no biases, Linear weights, grouped-query attention.</summary>
    Llama,
}

/// <summary>
/// Shape and numerics of a decoder-only transformer. <see cref="KvHeadCount"/> equals <see cref="HeadCount"/>
/// for GPT-2; for Llama it may divide it (grouped-query attention). <see cref="RopeTheta"/> is unused by GPT-2.
/// </summary>
public sealed record TransformerConfig(
    ModelFamily Family,
    int VocabSize,
    int ContextLength,
    int ModelDim,
    int LayerCount,
    int HeadCount,
    int KvHeadCount,
    int HiddenDim,
    float NormEps,
    float RopeTheta,
    bool TiedEmbeddings,
    bool UseBias)
{
    /// <summary>Per-head width: ModelDim / HeadCount.</summary>
    public int HeadDim => ModelDim / HeadCount;

    /// <summary>Width of the fused q|k|v projection output: (HeadCount + 2·KvHeadCount)·HeadDim.</summary>
    public int QkvDim => (HeadCount + 2 * KvHeadCount) * HeadDim;

    /// <summary>Width of the first MLP projection output: HiddenDim for GPT-2 (c_fc), 2·HiddenDim for Llama (gate|up).</summary>
    public int UpDim => Family == ModelFamily.Llama ? 2 * HiddenDim : HiddenDim;

    /// <summary>
    /// The checkpoint's config.json eos_token_id when it is a list (Llama 3: [128001, 128008, 128009]): generation
    /// stops on any of these ids as on the tokenizer's EOS, and saving the model writes the list back. Null when
    /// config.json gave one id or none (that id is the tokenizer's EOS, which alone ends generation, as before).
    /// </summary>
    public TokenIdList? EosTokenIds { get; init; }

    /// <summary>A GPT-2 configuration (HF defaults: MLP 4·d, eps 1e-5, tied head, biases).</summary>
    public static TransformerConfig Gpt2(int vocabSize, int contextLength, int modelDim, int layerCount, int headCount, float normEps = 1e-5f) =>
        new(ModelFamily.Gpt2, vocabSize, contextLength, modelDim, layerCount, headCount, headCount, 4 * modelDim, normEps, 0f, true, true);

    /// <summary>A Llama configuration (no biases).</summary>
    public static TransformerConfig Llama(
        int vocabSize, int contextLength, int modelDim, int layerCount, int headCount, int kvHeadCount, int hiddenDim,
        float normEps = 1e-5f, float ropeTheta = 10000f, bool tiedEmbeddings = false) =>
        new(ModelFamily.Llama, vocabSize, contextLength, modelDim, layerCount, headCount, kvHeadCount, hiddenDim, normEps, ropeTheta, tiedEmbeddings, false);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent field.</summary>
    public void Validate()
    {
        Positive(VocabSize, nameof(VocabSize));
        Positive(ContextLength, nameof(ContextLength));
        Positive(ModelDim, nameof(ModelDim));
        Positive(LayerCount, nameof(LayerCount));
        Positive(HeadCount, nameof(HeadCount));
        Positive(KvHeadCount, nameof(KvHeadCount));
        Positive(HiddenDim, nameof(HiddenDim));
        if (!(NormEps > 0f) || float.IsInfinity(NormEps))
            throw new ArgumentException($"NormEps must be positive and finite, got {NormEps}.", nameof(NormEps));
        if (ModelDim % HeadCount != 0)
            throw new ArgumentException($"ModelDim {ModelDim} is not divisible by HeadCount {HeadCount}.", nameof(HeadCount));
        if (HeadCount % KvHeadCount != 0)
            throw new ArgumentException($"HeadCount {HeadCount} is not divisible by KvHeadCount {KvHeadCount}.", nameof(KvHeadCount));
        foreach (int id in EosTokenIds ?? Enumerable.Empty<int>())
        {
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentException($"EosTokenIds {EosTokenIds} has id {id} outside the vocabulary of size {VocabSize}.", nameof(EosTokenIds));
        }

        if (Family == ModelFamily.Gpt2)
        {
            if (KvHeadCount != HeadCount)
                throw new ArgumentException($"GPT-2 has no grouped-query attention: KvHeadCount {KvHeadCount} must equal HeadCount {HeadCount}.", nameof(KvHeadCount));
            if (!TiedEmbeddings)
                throw new ArgumentException("GPT-2 ties its LM head to transformer.wte: TiedEmbeddings must be true.", nameof(TiedEmbeddings));
            if (!UseBias)
                throw new ArgumentException("GPT-2 layers have biases: UseBias must be true.", nameof(UseBias));
        }
        else
        {
            if (UseBias)
                throw new ArgumentException("Llama layers have no biases: UseBias must be false.", nameof(UseBias));
            if (HeadDim % 2 != 0)
                throw new ArgumentException($"RoPE needs an even head dimension, got {HeadDim}.", nameof(ModelDim));
            if (!(RopeTheta > 0f) || float.IsInfinity(RopeTheta))
                throw new ArgumentException($"RopeTheta must be positive and finite, got {RopeTheta}.", nameof(RopeTheta));
        }
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
    }
}
