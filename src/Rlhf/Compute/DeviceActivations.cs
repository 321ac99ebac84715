using ILGPU;
using ILGPU.Runtime;
using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// The device twin of <c>TransformerActivations</c>: every activation the backward reads plus its scratch, resident on
/// the accelerator, layer-major (layer l of X at [l·size, (l+1)·size)). Attention keeps a log-sum-exp per row instead
/// of the [t,t] probabilities. Grown when a larger (batch, seq) arrives, never reallocated otherwise.
/// </summary>
internal sealed class DeviceActivations : IDisposable
{
    private readonly Accelerator accelerator;
    private readonly TransformerConfig c;
    private readonly List<IDisposable> owned = new();
    private int capN = -1;

    public DeviceActivations(Accelerator accelerator, TransformerConfig config)
    {
        this.accelerator = accelerator;
        c = config;
    }

    public int Batch, Seq, N;
    public MemoryBuffer1D<int, Stride1D.Dense> Tokens = null!, Positions = null!, Targets = null!, Status = null!;
    public MemoryBuffer1D<float, Stride1D.Dense> Mask = null!;
    public MemoryBuffer1D<float, Stride1D.Dense> Resid = null!, Norm1 = null!, Mean1 = null!, Rstd1 = null!, Qkv = null!, Lse = null!, Att = null!;
    public MemoryBuffer1D<float, Stride1D.Dense> Resid2 = null!, Norm2 = null!, Mean2 = null!, Rstd2 = null!, Up = null!, Act = null!;
    public MemoryBuffer1D<float, Stride1D.Dense> NormF = null!, MeanF = null!, RstdF = null!, Logits = null!;
    public MemoryBuffer1D<float, Stride1D.Dense> DResid = null!, DNorm = null!, DQkv = null!, DAtt = null!, DUp = null!, DAct = null!, Delta = null!;
    public MemoryBuffer1D<float, Stride1D.Dense> RowLogProbs = null!, RowEntropy = null!, RowLse = null!, RowGradLogProbs = null!, RowGradEntropy = null!;

    public void Ensure(int batch, int seq)
    {
        int n = batch * seq;
        if (n > capN)
        {
            Free();
            long L = c.LayerCount, d = c.ModelDim, nn = n, hhd = c.HeadCount * c.HeadDim;
            Tokens = I(nn); Positions = I(nn); Targets = I(nn); Status = I(nn);
            Mask = F(nn);
            Resid = F((L + 1) * nn * d); Norm1 = F(L * nn * d); Mean1 = F(L * nn); Rstd1 = F(L * nn);
            Qkv = F(L * nn * c.QkvDim); Lse = F(L * nn * c.HeadCount); Att = F(L * nn * hhd);
            Resid2 = F(L * nn * d); Norm2 = F(L * nn * d); Mean2 = F(L * nn); Rstd2 = F(L * nn);
            Up = F(L * nn * c.UpDim); Act = F(L * nn * c.HiddenDim);
            NormF = F(nn * d); MeanF = F(nn); RstdF = F(nn); Logits = F(nn * c.VocabSize);
            DResid = F(nn * d); DNorm = F(nn * d); DQkv = F(nn * c.QkvDim); DAtt = F(nn * hhd); DUp = F(nn * c.UpDim); DAct = F(nn * c.HiddenDim);
            Delta = F(nn * c.HeadCount);
            RowLogProbs = F(nn); RowEntropy = F(nn); RowLse = F(nn); RowGradLogProbs = F(nn); RowGradEntropy = F(nn);
            capN = n;
        }

        Batch = batch;
        Seq = seq;
        N = n;
    }

    /// <summary>Slice <paramref name="index"/> of <paramref name="size"/> elements of a layer-major buffer.</summary>
    public static ArrayView<float> Slice(MemoryBuffer1D<float, Stride1D.Dense> buffer, long index, long size) => buffer.View.SubView(index * size, size);

    public void Dispose() => Free();

    private void Free()
    {
        foreach (var b in owned) b.Dispose();
        owned.Clear();
    }

    private MemoryBuffer1D<float, Stride1D.Dense> F(long n)
    {
        var b = accelerator.Allocate1D<float>(Math.Max(n, 1));
        owned.Add(b);
        return b;
    }

    private MemoryBuffer1D<int, Stride1D.Dense> I(long n)
    {
        var b = accelerator.Allocate1D<int>(Math.Max(n, 1));
        owned.Add(b);
        return b;
    }
}
