using Rlhf.Benchmarks.Gemm;
using Rlhf.Model;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>The matrix products a PPO update needs, for the GEMM roofline of the PPO iteration benchmark.</summary>
internal static class PpoUpdateGemms
{
    /// <summary>
    /// Every product of one minibatch step (rows of seq tokens, response length r) of a LoRA policy on a frozen base:
    /// each base linear's forward and input gradient (no weight gradient: the base is frozen), each adapter's two
    /// forward products and four backward ones, the attention products, and the LM head's forward and input gradient
    /// on the response positions only (the value head is a d-vector, left out).
    /// </summary>
    public static void AddMinibatchStep(GemmWorkload work, TransformerConfig c, LoraAdapter? adapter, int rows, int seq, int response)
    {
        int n = rows * seq, d = c.ModelDim;
        for (int l = 0; l < c.LayerCount; l++)
        {
            work.AddLinear(n, d, c.QkvDim, frozen: true);
            work.AddLinear(n, c.HeadCount * c.HeadDim, d, frozen: true);
            work.AddLinear(n, d, c.UpDim, frozen: true);
            work.AddLinear(n, c.HiddenDim, d, frozen: true);
            work.AddAttention(rows, c.HeadCount, seq, c.HeadDim);
        }

        if (adapter != null)
        {
            int r = adapter.Rank;
            foreach (var slot in adapter.Slots)
            {
                work.Add(n, r, slot.In, false, true);      // u = x·Aᵀ
                work.Add(n, slot.Out, r, false, true);     // y += u·Bᵀ
                work.Add(slot.Out, r, n, true, false);     // dB = dyᵀ·u
                work.Add(n, r, slot.Out, false, false);    // du = dy·B
                work.Add(r, slot.In, n, true, false);      // dA = duᵀ·x
                work.Add(n, slot.In, r, false, false);     // dx += du·A
            }
        }

        work.AddLinear(rows * response, d, c.VocabSize, frozen: true);
    }
}
