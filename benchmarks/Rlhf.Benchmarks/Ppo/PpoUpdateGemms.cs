using Rlhf.Model;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>The matrix products a PPO update needs, for the GEMM roofline of the PPO iteration benchmark.</summary>
internal static class PpoUpdateGemms
{
    /// <summary>
    /// Every product of one minibatch step (k rows of seq tokens, response length r) of a LoRA policy on a frozen
    /// base, as (m, n, k, transposeA, transposeB): each base linear's forward and input gradient (no weight gradient:
    /// the base is frozen), each adapter's two forward products and four backward ones, per (row, head) the six
    /// attention products, and the LM head's forward and input gradient on the response positions only (the value
    /// head is a d-vector, left out). The engine recomputes the response logits in the backward to avoid a second
    /// N×V buffer; that third LM-head product is deliberately not in the roofline.
    /// </summary>
    public static List<(int M, int N, int K, bool TA, bool TB)> MinibatchStep(TransformerConfig c, LoraAdapter? adapter, int rows, int seq, int response)
    {
        int n = rows * seq, d = c.ModelDim, hd = c.HeadDim;
        var list = new List<(int, int, int, bool, bool)>();
        void Frozen(int inDim, int outDim)
        {
            list.Add((n, outDim, inDim, false, true));   // y = x·Wᵀ
            list.Add((n, inDim, outDim, false, false));  // dx = dy·W
        }

        for (int l = 0; l < c.LayerCount; l++)
        {
            Frozen(d, c.QkvDim);
            Frozen(c.HeadCount * hd, d);
            Frozen(d, c.UpDim);
            Frozen(c.HiddenDim, d);
            for (int h = 0; h < rows * c.HeadCount; h++)
            {
                list.Add((seq, seq, hd, false, true));   // S = Q·Kᵀ
                list.Add((seq, hd, seq, false, false));  // O = P·V
                list.Add((seq, seq, hd, false, true));   // dP = dO·Vᵀ
                list.Add((seq, hd, seq, true, false));   // dV = Pᵀ·dO
                list.Add((seq, hd, seq, false, false));  // dQ = dS·K
                list.Add((seq, hd, seq, true, false));   // dK = dSᵀ·Q
            }
        }

        if (adapter != null)
        {
            int r = adapter.Rank;
            foreach (var slot in adapter.Slots)
            {
                list.Add((n, r, slot.In, false, true));      // u = x·Aᵀ
                list.Add((n, slot.Out, r, false, true));     // y += u·Bᵀ
                list.Add((slot.Out, r, n, true, false));     // dB = dyᵀ·u
                list.Add((n, r, slot.Out, false, false));    // du = dy·B
                list.Add((r, slot.In, n, true, false));      // dA = duᵀ·x
                list.Add((n, slot.In, r, false, false));     // dx += du·A
            }
        }

        int logitRows = rows * response;
        list.Add((logitRows, c.VocabSize, d, false, true));  // logits = h·Eᵀ
        list.Add((logitRows, d, c.VocabSize, false, false)); // dh = dlogits·E
        return list;
    }
}
