using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Model;
using S = Rlhf.Compute.DeviceActivations;

namespace Rlhf.Compute;

/// <summary>
/// LoRA on the device (y += scale·(x·Aᵀ)·Bᵀ per adapted part, the base frozen, as <see cref="TransformerModel"/>'s
/// ProjectForward/ProjectBackward) and the pieces a head-based trainer (PPO) needs: forward without the [N, V]
/// logits, logits and their gradient for a block of rows, and a backward from a gradient w.r.t. the final hidden state.
/// </summary>
public sealed partial class DeviceTransformer
{
    private LoraAdapter? adapter;
    private MemoryBuffer1D<float, Stride1D.Dense>? adapterParameters, adapterGradients;
    private MemoryBuffer1D<float, Stride1D.Dense>? loraXa, loraDelta, loraDxa;
    private LoraDeviceKernels? loraKernels;
    private long loraCapN = -1;
    private bool forwardSkippedAdapter;

    /// <summary>True when the base weights train (no adapter attached).</summary>
    public bool TrainsBase => adapter is null;

    /// <summary>The attached adapter's layout (its host buffers are not kept in sync; see <see cref="DownloadAdapter"/>).</summary>
    public LoraAdapter? Adapter => adapter;

    /// <summary>The trained weights on the device: the adapter's flat buffer when attached, else <see cref="Parameters"/>.</summary>
    public ArrayView<float> TrainableParameters => adapterParameters?.View ?? parameters.View;

    /// <summary>Gradients of <see cref="TrainableParameters"/> (same layout).</summary>
    public ArrayView<float> TrainableGradients => adapterGradients?.View ?? gradients.View;

    /// <summary>
    /// Attaches <paramref name="lora"/> (made for this model's layout, e.g. by <see cref="TransformerModel.AttachAdapter"/>):
    /// its weights are uploaded, its gradients start at zero, the base is frozen from now on and AdamW moments restart.
    /// </summary>
    public void AttachAdapter(LoraAdapter lora)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (adapter != null) throw new InvalidOperationException("an adapter is already attached.");
        foreach (var s in lora.Slots)
        {
            if (s.Layer >= Config.LayerCount) throw new ArgumentException($"adapter slot '{s.ModuleName}' is for layer {s.Layer}; the model has {Config.LayerCount}.", nameof(lora));
        }

        acc.Synchronize();
        adapter = lora;
        adapterParameters = acc.Allocate1D(lora.Parameters);
        adapterGradients = acc.Allocate1D<float>(Math.Max(1, lora.Parameters.Length));
        adapterGradients.MemSetToZero();
        loraKernels ??= new LoraDeviceKernels(device);
        firstMoment?.Dispose();
        secondMoment?.Dispose();
        firstMoment = secondMoment = null;
        haveForward = false;
    }

    /// <summary>Copies the adapter's weights (<see cref="LoraAdapter.Parameters"/> layout) in.</summary>
    public void UploadAdapter(ReadOnlySpan<float> source)
    {
        var a = adapterParameters ?? throw new InvalidOperationException("no adapter attached.");
        if (source.Length != adapter!.Parameters.Length) throw new ArgumentException($"source has {source.Length} elements, the adapter {adapter.Parameters.Length}.", nameof(source));
        a.View.SubView(0, source.Length).CopyFromCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(source), source.Length);
    }

    /// <summary>Copies the adapter's weights out (<see cref="LoraAdapter.Parameters"/> layout).</summary>
    public void DownloadAdapter(Span<float> destination)
    {
        var a = adapterParameters ?? throw new InvalidOperationException("no adapter attached.");
        Download(a.View.SubView(0, adapter!.Parameters.Length), destination, nameof(destination));
    }

    /// <summary>Final hidden states [batch·seq, d] of the last forward (after the final norm): the heads' input.</summary>
    internal ArrayView<float> FinalHidden => S.Slice(acts.NormF, 0, (long)acts.N * Config.ModelDim);

    /// <summary>The gradient w.r.t. <see cref="FinalHidden"/> that <see cref="BackwardFromHiddenGradient"/> reads; callers fill it.</summary>
    internal ArrayView<float> HiddenGradient => S.Slice(acts.DNorm, 0, (long)acts.N * Config.ModelDim);

    /// <summary>Rows, batch and sequence length of the last forward.</summary>
    internal int ForwardRows => acts.N;

    /// <summary>logits [rowCount, V] = FinalHidden[rowStart .. rowStart + rowCount)·LMheadᵀ (as <see cref="TransformerModel.ComputeLogits"/>).</summary>
    internal void LogitRows(int rowStart, int rowCount, ArrayView<float> logits)
    {
        CheckRows(rowStart, rowCount);
        int d = Config.ModelDim, v = Config.VocabSize;
        gemm.Multiply(FinalHidden.SubView((long)rowStart * d, (long)rowCount * d), P(Layout.LmHead, (long)v * d), logits, rowCount, v, d, transposeB: true);
    }

    /// <summary>
    /// For k sequences of length <paramref name="seq"/> whose last r = seq − promptLength tokens are a response:
    /// logits [k·r, V] from the rows of the last forward that predict each response token (i·seq + promptLength − 1,
    /// r of them), then the token statistics of <paramref name="tokens"/> [k·r] over them (as
    /// <see cref="VocabularyDeviceKernels.TokenStatistics"/>; callers check <paramref name="status"/>).
    /// </summary>
    internal void ResponseTokenStatistics(int k, int seq, int promptLength, float temperature, ArrayView<float> logits, ArrayView<int> tokens,
        ArrayView<float> logProbs, ArrayView<float> entropy, ArrayView<float> logSumExp, ArrayView<int> status)
    {
        int r = seq - promptLength;
        long rowLength = (long)r * Config.VocabSize;
        for (int i = 0; i < k; i++) LogitRows(i * seq + promptLength - 1, r, logits.SubView(i * rowLength, rowLength));
        vocab.TokenStatistics(logits, tokens, Config.VocabSize, temperature, logProbs, entropy, logSumExp, status);
    }

    /// <summary>Backward of <see cref="ResponseTokenStatistics"/>' logit rows: <see cref="AccumulateLogitRowsGradient"/> for each sequence's r rows.</summary>
    internal void AccumulateResponseLogitRowsGradient(int k, int seq, int promptLength, ArrayView<float> dLogits)
    {
        int r = seq - promptLength;
        long rowLength = (long)r * Config.VocabSize;
        for (int i = 0; i < k; i++) AccumulateLogitRowsGradient(i * seq + promptLength - 1, r, dLogits.SubView(i * rowLength, rowLength));
    }

    /// <summary>
    /// Backward of <see cref="LogitRows"/>: HiddenGradient[rows] += dLogits·LMhead and, while the base trains, the LM head's
    /// gradient += dLogitsᵀ·FinalHidden[rows] (as <see cref="TransformerModel.AccumulateLogitsGradient"/>).
    /// </summary>
    internal void AccumulateLogitRowsGradient(int rowStart, int rowCount, ArrayView<float> dLogits)
    {
        CheckRows(rowStart, rowCount);
        int d = Config.ModelDim, v = Config.VocabSize;
        gemm.Multiply(dLogits, P(Layout.LmHead, (long)v * d), HiddenGradient.SubView((long)rowStart * d, (long)rowCount * d), rowCount, d, v, accumulate: true);
        if (TrainsBase)
            gemm.Multiply(dLogits, FinalHidden.SubView((long)rowStart * d, (long)rowCount * d), G(Layout.LmHead, (long)v * d), v, d, rowCount, transposeA: true, accumulate: true);
    }

    /// <summary>Backward of the last forward from <see cref="HiddenGradient"/>: gradients added into the trained weights.</summary>
    internal void BackwardFromHiddenGradient()
    {
        if (!haveForward) throw new InvalidOperationException("Backward needs a Forward first.");
        BackwardFromHidden();
    }

    private void CheckRows(int rowStart, int rowCount)
    {
        if (!haveForward) throw new InvalidOperationException("needs a Forward first.");
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > acts.N)
            throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, $"rows [{rowStart}, {rowStart + rowCount}) are outside [0, {acts.N}).");
    }

    /// <summary>Training forward: the adapted parts' x·Aᵀ [slot, n, r] stay in the LoRA scratch for <see cref="AdapterBackward"/>.</summary>
    private void AdapterForward(int l, int g, ArrayView<float> x, ArrayView<float> y, int n)
    {
        var lora = adapter;
        if (lora is null || forwardSkippedAdapter) return;
        EnsureLoraScratch(n);
        ApplyAdapter(lora, l, g, x, y, n, loraXa!.View, xaPerSlot: true, loraDelta!.View);
    }

    /// <summary>
    /// y [n,out] of linear group g of layer l += every adapted part's scale·(x·Aᵀ)·Bᵀ: the one LoRA forward of the
    /// training pass and of cached decoding. <paramref name="xa"/> holds x·Aᵀ, [slots, n, r] when
    /// <paramref name="xaPerSlot"/> (kept for the backward), else [n, r] reused by every part; <paramref name="delta"/>
    /// is [n, max part width] scratch.
    /// </summary>
    private void ApplyAdapter(LoraAdapter lora, int l, int g, ArrayView<float> x, ArrayView<float> y, int n, ArrayView<float> xa, bool xaPerSlot, ArrayView<float> delta)
    {
        var grp = LoraAdapter.Group(Layout.Layers[l], g);
        int r = lora.Rank;
        for (int p = 0; p < grp.Parts.Length; p++)
        {
            int s = lora.SlotIndex(l, g, p);
            if (s < 0) continue;
            var slot = lora.Slots[s];
            var xs = xa.SubView(xaPerSlot ? (long)s * n * r : 0, (long)n * r);
            gemm.Multiply(x, AP(slot.AOffset, (long)r * slot.In), xs, n, r, slot.In, transposeB: true);
            var ds = delta.SubView(0, (long)n * slot.Out);
            gemm.Multiply(xs, AP(slot.BOffset, (long)slot.Out * r), ds, n, slot.Out, r, transposeB: true);
            loraKernels!.AddScaledColumns(y, ds, n, grp.Out, grp.Parts[p].ColumnOffset, slot.Out, lora.Scale);
        }
    }

    /// <summary>The widest adapted part's output count (the delta scratch's row length).</summary>
    private static int MaxSlotOut(LoraAdapter lora)
    {
        int maxOut = 1;
        foreach (var s in lora.Slots) maxOut = Math.Max(maxOut, s.Out);
        return maxOut;
    }

    /// <summary>dy [n,out] → dx [n,in] += the adapted parts' input gradients; the adapter's A and B gradients added.</summary>
    private void AdapterBackward(int l, int g, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx, int n)
    {
        var lora = adapter;
        if (lora is null) return;
        var grp = LoraAdapter.Group(Layout.Layers[l], g);
        int r = lora.Rank;
        for (int p = 0; p < grp.Parts.Length; p++)
        {
            int s = lora.SlotIndex(l, g, p);
            if (s < 0) continue;
            var slot = lora.Slots[s];
            var xa = loraXa!.View.SubView((long)s * n * r, (long)n * r);
            var dsub = loraDelta!.View.SubView(0, (long)n * slot.Out);
            loraKernels!.ReadScaledColumns(dy, dsub, n, grp.Out, grp.Parts[p].ColumnOffset, slot.Out, lora.Scale);
            gemm.Multiply(dsub, xa, AG(slot.BOffset, (long)slot.Out * r), slot.Out, r, n, transposeA: true, accumulate: true);
            var dxa = loraDxa!.View.SubView(0, (long)n * r);
            gemm.Multiply(dsub, AP(slot.BOffset, (long)slot.Out * r), dxa, n, r, slot.Out);
            gemm.Multiply(dxa, x, AG(slot.AOffset, (long)r * slot.In), r, slot.In, n, transposeA: true, accumulate: true);
            gemm.Multiply(dxa, AP(slot.AOffset, (long)r * slot.In), dx, n, slot.In, r, accumulate: true);
        }
    }

    private ArrayView<float> AP(int offset, long length) => adapterParameters!.View.SubView(offset, length);

    private ArrayView<float> AG(int offset, long length) => adapterGradients!.View.SubView(offset, length);

    private void EnsureLoraScratch(int n)
    {
        if (n <= loraCapN) return;
        var lora = adapter!;
        int maxOut = MaxSlotOut(lora);
        acc.Synchronize();
        loraXa?.Dispose();
        loraDelta?.Dispose();
        loraDxa?.Dispose();
        loraXa = acc.Allocate1D<float>(Math.Max(1L, (long)lora.Slots.Count * n * lora.Rank));
        loraDelta = acc.Allocate1D<float>((long)n * maxOut);
        loraDxa = acc.Allocate1D<float>((long)n * lora.Rank);
        loraCapN = n;
    }

    private void DisposeAdapter()
    {
        adapterParameters?.Dispose();
        adapterGradients?.Dispose();
        loraXa?.Dispose();
        loraDelta?.Dispose();
        loraDxa?.Dispose();
    }
}
