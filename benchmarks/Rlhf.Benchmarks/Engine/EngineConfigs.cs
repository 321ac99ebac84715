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
    /// Every matrix product of one training step (forward + backward) as (m, n, k, transposeA, transposeB): each
    /// linear layer's forward, input gradient and weight gradient, the LM head's three, and per (batch, head) the
    /// attention products (QKᵀ, PV forward; dP, dV, dQ, dK backward). This is what OpenBLAS is timed on.
    /// </summary>
    public static List<(int M, int N, int K, bool TA, bool TB)> TrainingStepGemms(TransformerConfig c, int batch, int seq)
    {
        int tokens = batch * seq, d = c.ModelDim, hd = c.HeadDim;
        var list = new List<(int, int, int, bool, bool)>();
        void Linear(int inDim, int outDim)
        {
            list.Add((tokens, outDim, inDim, false, true));   // y = x·Wᵀ
            list.Add((tokens, inDim, outDim, false, false));  // dx = dy·W
            list.Add((outDim, inDim, tokens, true, false));   // dW = dyᵀ·x
        }

        for (int l = 0; l < c.LayerCount; l++)
        {
            Linear(d, c.QkvDim);
            Linear(c.HeadCount * hd, d);
            Linear(d, c.UpDim);
            Linear(c.HiddenDim, d);
            for (int h = 0; h < batch * c.HeadCount; h++)
            {
                list.Add((seq, seq, hd, false, true));   // S = Q·Kᵀ
                list.Add((seq, hd, seq, false, false));  // O = P·V
                list.Add((seq, seq, hd, false, true));   // dP = dO·Vᵀ
                list.Add((seq, hd, seq, true, false));   // dV = Pᵀ·dO
                list.Add((seq, hd, seq, false, false));  // dQ = dS·K
                list.Add((seq, hd, seq, true, false));   // dK = dSᵀ·Q
            }
        }

        Linear(d, c.VocabSize);
        return list;
    }
}
