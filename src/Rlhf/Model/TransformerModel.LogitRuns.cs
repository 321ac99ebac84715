using Rlhf.Kernels;

namespace Rlhf.Model;

public sealed partial class TransformerModel
{
    // Hidden rows of several runs gathered into one block, and their input gradient before it is scattered back.
    private float[] runHidden = [], runHiddenGradient = [];

    /// <summary>
    /// Logits for <paramref name="runs"/> runs of <paramref name="rowCount"/> rows, run i starting at
    /// rowStart + i·<paramref name="stride"/> of the last <see cref="Forward"/>, as one product:
    /// logits [runs·rowCount, vocab] = FinalHidden[rows]·LMheadᵀ. PPO's response positions form one run per
    /// sequence; one product reads the LM head once per minibatch instead of once per sequence.
    /// </summary>
    public void ComputeLogits(int rowStart, int rowCount, int runs, int stride, Span<float> logits)
    {
        int rows = CheckRuns(rowStart, rowCount, runs, stride);
        int d = Config.ModelDim, v = Config.VocabSize;
        if (logits.Length != (long)rows * v) throw new ArgumentException($"logits has {logits.Length} elements, needs runs*rowCount*vocab = {(long)rows * v}.", nameof(logits));
        if (runs == 1 || stride == rowCount)
        {
            ComputeLogits(rowStart, rows, logits);
            return;
        }

        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        var hidden = GatherRuns(rowStart, rowCount, runs, stride);
        Gemm.Multiply(hidden, Parameters.AsSpan(Layout.LmHead, v * d), logits, rows, v, d, transposeB: true);
        prof?.Lap(LayerKind.LmHeadMatmul, ProfilePass.Forward, ref mark);
    }

    /// <summary>
    /// Backward of <see cref="ComputeLogits(int, int, int, int, Span{float})"/>: dLogits [runs·rowCount, vocab] → the
    /// LM head's weight gradient (when the base trains) and the pending gradient w.r.t. those rows of FinalHidden.
    /// </summary>
    public void AccumulateLogitsGradient(int rowStart, int rowCount, int runs, int stride, ReadOnlySpan<float> dLogits)
    {
        int rows = CheckRuns(rowStart, rowCount, runs, stride);
        int d = Config.ModelDim, v = Config.VocabSize;
        if (dLogits.Length != (long)rows * v) throw new ArgumentException($"dLogits has {dLogits.Length} elements, needs runs*rowCount*vocab = {(long)rows * v}.", nameof(dLogits));
        if (runs == 1 || stride == rowCount)
        {
            AccumulateLogitsGradient(rowStart, rows, dLogits);
            return;
        }

        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        if (runHiddenGradient.Length < rows * d) runHiddenGradient = new float[rows * d];
        var dHidden = runHiddenGradient.AsSpan(0, rows * d);
        Gemm.Multiply(dLogits, Parameters.AsSpan(Layout.LmHead, v * d), dHidden, rows, d, v);
        var pending = PendingHiddenGradient();
        for (int i = 0; i < runs; i++)
        {
            var target = pending.Slice((rowStart + i * stride) * d, rowCount * d);
            System.Numerics.Tensors.TensorPrimitives.Add(target, dHidden.Slice(i * rowCount * d, rowCount * d), target);
        }

        if (TrainsBase)
        {
            var hidden = GatherRuns(rowStart, rowCount, runs, stride);
            Gemm.Multiply(dLogits, hidden, Gradients.AsSpan(Layout.LmHead, v * d), v, d, rows, transposeA: true, accumulate: true);
        }

        prof?.Lap(LayerKind.LmHeadMatmul, ProfilePass.Backward, ref mark);
    }

    private int CheckRuns(int rowStart, int rowCount, int runs, int stride)
    {
        if (runs < 1) throw new ArgumentOutOfRangeException(nameof(runs), runs, "needs at least one run.");
        if (stride < rowCount) throw new ArgumentOutOfRangeException(nameof(stride), stride, $"runs would overlap: stride is below rowCount {rowCount}.");
        CheckRows(rowStart, (runs - 1) * stride + rowCount);
        return runs * rowCount;
    }

    private ReadOnlySpan<float> GatherRuns(int rowStart, int rowCount, int runs, int stride)
    {
        int d = Config.ModelDim, rows = runs * rowCount;
        if (runHidden.Length < rows * d) runHidden = new float[rows * d];
        var hidden = FinalHidden;
        for (int i = 0; i < runs; i++)
            hidden.Slice((rowStart + i * stride) * d, rowCount * d).CopyTo(runHidden.AsSpan(i * rowCount * d));
        return runHidden.AsSpan(0, rows * d);
    }
}
