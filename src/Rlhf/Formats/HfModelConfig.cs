using Rlhf.Model;

namespace Rlhf.Formats;

/// <summary>The model families whose Hugging Face <c>config.json</c> this engine reads.</summary>
public enum HfModelType
{
    /// <summary><c>model_type: gpt2</c>: learned positions, LayerNorm, GELU (tanh) MLP, Conv1D weights.</summary>
    Gpt2,

    /// <summary><c>model_type: llama</c>: RoPE, RMSNorm, SwiGLU MLP, grouped-query attention.</summary>
    Llama,
}

/// <summary>
/// The architecture fields of a Hugging Face <c>config.json</c>, in family-neutral names.
/// GPT-2 keys map as n_embd → HiddenSize, n_layer → NumLayers, n_head → NumHeads (= NumKvHeads),
/// n_inner → IntermediateSize (null means 4·n_embd), n_positions → MaxPositionEmbeddings, layer_norm_epsilon → NormEps.
/// <see cref="EosTokenId"/> is eos_token_id as the file gives it: one id or a list (Llama 3's [128001, 128008, 128009]).
/// </summary>
public sealed record HfModelConfig(
    HfModelType ModelType,
    int HiddenSize,
    int IntermediateSize,
    int NumLayers,
    int NumHeads,
    int NumKvHeads,
    int MaxPositionEmbeddings,
    int VocabSize,
    float NormEps,
    float RopeTheta,
    bool TieWordEmbeddings,
    int? BosTokenId = null,
    TokenIdList? EosTokenId = null)
{
    /// <summary>Width of one attention head: HiddenSize / NumHeads.</summary>
    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>Width of the key/value projections: NumKvHeads · HeadDim.</summary>
    public int KvDim => NumKvHeads * HeadDim;

    /// <summary>A GPT-2 config with Hugging Face's defaults for the fields not given (eps 1e-5, tied embeddings, BOS = EOS = 50256
    /// when the vocabulary has id 50256; a smaller one, such as the byte tokenizer's 259, has no such token and leaves them out).</summary>
    public static HfModelConfig Gpt2(int hiddenSize, int numLayers, int numHeads, int maxPositions = 1024, int vocabSize = 50257, int? intermediateSize = null)
    {
        int? endOfText = vocabSize > Gpt2EndOfText ? Gpt2EndOfText : null;
        return new(HfModelType.Gpt2, hiddenSize, intermediateSize ?? 4 * hiddenSize, numLayers, numHeads, numHeads, maxPositions, vocabSize,
            1e-5f, 0f, true, endOfText, endOfText is int eos ? TokenIdList.Single(eos) : null);
    }

    /// <summary>GPT-2's &lt;|endoftext|&gt;, its BOS and EOS.</summary>
    private const int Gpt2EndOfText = 50256;
}
