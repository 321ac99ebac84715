namespace Rlhf.Model;

/// <summary>
/// Every activation the backward pass reads, plus the backward's scratch, sized for (batch, seq) and reused across
/// steps; a request larger than the current capacity reallocates (never per call otherwise).
/// Per-layer tensors are stored layer-major: layer l of X lives at [l·size, (l+1)·size).
/// </summary>
internal sealed class TransformerActivations
{
    private readonly TransformerConfig c;
    private int capBt = -1, capAtt = -1, capLora = -1;

    public TransformerActivations(TransformerConfig config) => c = config;

    public int Batch, Seq, N;
    public int[] Positions = [];
    public float[] Resid = [];     // [L+1, N, d]: input of each layer, last = output of the stack
    public float[] Norm1 = [], Mean1 = [], Rstd1 = [];   // [L, N, d], [L, N]
    public float[] Qkv = [];       // [L, N, qkvDim] (after RoPE)
    public float[] Probs = [];     // [L, B, H, T, T]
    public float[] Att = [];       // [L, N, H·hd]
    public float[] Resid2 = [];    // [L, N, d]: after the attention residual
    public float[] Norm2 = [], Mean2 = [], Rstd2 = [];
    public float[] Up = [];        // [L, N, upDim]: c_fc pre-GELU, or gate|up
    public float[] Act = [];       // [L, N, F]
    public float[] NormF = [], MeanF = [], RstdF = [];   // [N, d], [N]
    public float[] Logits = [];    // [N, V]
    public float[] LoraXa = [];    // [slots, N, r]

    // Backward scratch.
    public float[] DResid = [], DNorm = [], DNormF = [], DQkv = [], DAtt = [], DUp = [], DAct = [], DAttScratch = [];
    public float[] LoraDelta = [], LoraDxa = [];

    public void Ensure(int batch, int seq, LoraAdapter? adapter)
    {
        int n = batch * seq;
        long att = (long)batch * c.HeadCount * seq * seq;
        int L = c.LayerCount, d = c.ModelDim;
        if (n > capBt || att > capAtt)
        {
            int nb = Math.Max(n, capBt);
            long na = Math.Max(att, capAtt);
            long total = (long)L * Math.Max(na, (long)nb * Math.Max(c.QkvDim, c.UpDim));
            if (total > Array.MaxLength) throw new ArgumentException($"batch {batch} x seq {seq} needs more activation memory than one array holds.", nameof(batch));
            Positions = new int[nb];
            Resid = new float[(long)(L + 1) * nb * d];
            Norm1 = new float[(long)L * nb * d];
            Mean1 = new float[L * nb];
            Rstd1 = new float[L * nb];
            Qkv = new float[(long)L * nb * c.QkvDim];
            Probs = new float[L * na];
            Att = new float[(long)L * nb * c.HeadCount * c.HeadDim];
            Resid2 = new float[(long)L * nb * d];
            Norm2 = new float[(long)L * nb * d];
            Mean2 = new float[L * nb];
            Rstd2 = new float[L * nb];
            Up = new float[(long)L * nb * c.UpDim];
            Act = new float[(long)L * nb * c.HiddenDim];
            NormF = new float[nb * d];
            MeanF = new float[nb];
            RstdF = new float[nb];
            Logits = new float[(long)nb * c.VocabSize];
            DResid = new float[nb * d];
            DNorm = new float[nb * d];
            DNormF = new float[nb * d];
            DQkv = new float[nb * c.QkvDim];
            DAtt = new float[nb * c.HeadCount * c.HeadDim];
            DUp = new float[nb * c.UpDim];
            DAct = new float[nb * c.HiddenDim];
            DAttScratch = new float[nb * c.KvHeadCount];
            capBt = nb;
            capAtt = (int)Math.Min(na, int.MaxValue);
            capLora = -1;
        }

        if (adapter != null)
        {
            int need = adapter.Slots.Count * capBt * adapter.Rank;
            if (need > capLora)
            {
                LoraXa = new float[need];
                LoraDelta = new float[capBt * Math.Max(c.QkvDim, c.UpDim)];
                LoraDxa = new float[capBt * adapter.Rank];
                capLora = need;
            }
        }

        Batch = batch;
        Seq = seq;
        N = n;
    }
}
