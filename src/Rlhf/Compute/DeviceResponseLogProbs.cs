using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// <see cref="IResponseLogProbs"/> on a <see cref="DeviceTransformer"/>: the forward, the LM head on the response
/// positions ([batch·maxNewTokens, V], never [batch·seq, V]) and the token statistics run on the device, and only the
/// log-probabilities come back. Values as <see cref="ResponseLogProbs"/> to fp32 rounding (~1e-6 relative). Buffers
/// grow to the largest batch seen and are reused.
/// </summary>
public sealed class DeviceResponseLogProbs(DeviceTransformer model) : IResponseLogProbs, IDisposable
{
    private MemoryBuffer1D<float, Stride1D.Dense>? logits, logProbs, entropy, logSumExp;
    private MemoryBuffer1D<int, Stride1D.Dense>? tokens, status;
    private int[] hostStatus = [];
    private int capacity;

    /// <exception cref="ArgumentException">A logit is NaN or +∞, or a row is −∞ everywhere (the CPU path's message).</exception>
    public void LogProbs(GenerationResult result, float temperature, bool useAdapter, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(result);
        int b = result.Batch, p = result.PromptLength, r = result.MaxNewTokens, rows = b * r, v = model.Config.VocabSize;
        if (destination.Length != rows)
            throw new ArgumentException($"destination has {destination.Length} elements, the responses {rows}.", nameof(destination));
        if (rows == 0) return;
        var (sequences, mask, seq) = result.Concatenate();
        Ensure(rows, v);
        model.Forward(sequences, mask, b, seq, computeLogits: false, useAdapter: useAdapter);
        var tok = tokens!.View.SubView(0, rows);
        tok.CopyFromCPU(ref result.Tokens[0], rows);
        var lp = logProbs!.View.SubView(0, rows);
        var st = status!.View.SubView(0, rows);
        model.ResponseTokenStatistics(b, seq, p, temperature, logits!.View.SubView(0, (long)rows * v), tok, lp,
            entropy!.View.SubView(0, rows), logSumExp!.View.SubView(0, rows), st);
        model.Accelerator.Synchronize();
        st.CopyToCPU(ref hostStatus[0], rows);
        VocabularyDeviceKernels.ThrowIfInvalid(hostStatus.AsSpan(0, rows));
        lp.CopyToCPU(ref destination[0], rows);
    }

    private void Ensure(int rows, int vocab)
    {
        if (rows <= capacity) return;
        Dispose();
        var acc = model.Accelerator;
        logits = acc.Allocate1D<float>((long)rows * vocab);
        logProbs = acc.Allocate1D<float>(rows);
        entropy = acc.Allocate1D<float>(rows);
        logSumExp = acc.Allocate1D<float>(rows);
        tokens = acc.Allocate1D<int>(rows);
        status = acc.Allocate1D<int>(rows);
        hostStatus = new int[rows];
        capacity = rows;
    }

    public void Dispose()
    {
        logits?.Dispose();
        logProbs?.Dispose();
        entropy?.Dispose();
        logSumExp?.Dispose();
        tokens?.Dispose();
        status?.Dispose();
        logits = logProbs = entropy = logSumExp = null;
        tokens = status = null;
        capacity = 0;
    }
}
