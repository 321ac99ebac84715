using Rlhf.Benchmarks.Gemm;
using Rlhf.Model;

namespace Rlhf.Benchmarks.Engine;

/// <summary>The engine issue's benchmark models: GPT-2 with 6 layers, 384 channels, 6 heads, vocabulary 50257, and a Llama of similar size.</summary>
public enum EngineModel
{
    Gpt2_6L_384,
    Llama_6L_384_Gqa,
}

internal static class EngineConfigs
{
    public static TransformerConfig Of(EngineModel model) => model switch
    {
        EngineModel.Gpt2_6L_384 => TransformerConfig.Gpt2(vocabSize: 50257, contextLength: 1024, modelDim: 384, layerCount: 6, headCount: 6),
        EngineModel.Llama_6L_384_Gqa => TransformerConfig.Llama(vocabSize: 32000, contextLength: 1024, modelDim: 384, layerCount: 6, headCount: 6,
            kvHeadCount: 2, hiddenDim: 1024),
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, null),
    };

    /// <summary>
    /// Every matrix product of one training step (forward + backward): each linear layer's forward, input gradient
    /// and weight gradient, the LM head's three, and per (batch, head) the attention products (QKᵀ, PV forward; dP,
    /// dV, dQ, dK backward). This is what OpenBLAS is timed on.
    /// </summary>
    public static GemmWorkload TrainingStepGemms(TransformerConfig c, int batch, int seq)
    {
        int tokens = batch * seq, d = c.ModelDim;
        var work = new GemmWorkload();
        for (int l = 0; l < c.LayerCount; l++)
        {
            work.AddLinear(tokens, d, c.QkvDim);
            work.AddLinear(tokens, c.HeadCount * c.HeadDim, d);
            work.AddLinear(tokens, d, c.UpDim);
            work.AddLinear(tokens, c.HiddenDim, d);
            work.AddAttention(batch, c.HeadCount, seq, c.HeadDim);
        }

        work.AddLinear(tokens, d, c.VocabSize);
        work.Allocate();
        return work;
    }
}
