using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Model;
using S = Rlhf.Compute.DeviceActivations;

namespace Rlhf.Compute;

/// <summary>
/// <see cref="TransformerModel"/>'s forward and backward (GPT-2 and Llama, grouped-query attention, padding masks)
/// with parameters, gradients, optimizer state and activations resident on a <see cref="KernelDevice"/>: ILGPU
/// kernels for the layers, <see cref="IDeviceGemm"/> (cuBLAS on CUDA) for the matrix products. Buffers use the
/// model's <see cref="ParameterLayout"/>, so uploads, downloads and gradients compare 1:1 with the CPU model. Only
/// inputs go up and metrics come down during a step. With a LoRA adapter attached (<see cref="AttachAdapter"/>) the
/// base is frozen and only the adapter trains, as on the CPU model.
/// </summary>
public sealed partial class DeviceTransformer : ICausalLmBackend
{
    private readonly KernelDevice device;
    private readonly Accelerator acc;
    private readonly TransformerDeviceKernels k;
    private readonly VocabularyDeviceKernels vocab;
    private readonly IDeviceGemm gemm;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> parameters, gradients;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? ropeCos, ropeSin;
    private readonly S acts;
    private MemoryBuffer1D<float, Stride1D.Dense>? firstMoment, secondMoment;
    private DeviceOptimKernels? optim;
    private int[] hostInts = [];
    private float[] hostFloats = [];
    private readonly bool ownsDevice;
    private bool haveForward, haveLogits, haveDLogits;

    /// <param name="device">Where the model runs (CUDA, or ILGPU's CPU accelerator in tests).</param>
    /// <param name="config">The model's shape.</param>
    /// <param name="allowTf32">Let cuBLAS use TF32 tensor cores (faster, ~1e-3 relative); fp32 otherwise.</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with this model.</param>
    public DeviceTransformer(KernelDevice device, TransformerConfig config, bool allowTf32 = false, bool ownsDevice = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        this.device = device;
        this.ownsDevice = ownsDevice;
        acc = device.Accelerator;
        Layout = new ParameterLayout(config);
        Config = config;
        k = new TransformerDeviceKernels(device);
        vocab = new VocabularyDeviceKernels(device);
        gemm = DeviceGemm.Create(device, allowTf32);
        parameters = acc.Allocate1D<float>(Layout.TotalLength);
        gradients = acc.Allocate1D<float>(Layout.TotalLength);
        gradients.MemSetToZero();
        acts = new S(acc, config);
        if (config.Family == ModelFamily.Llama)
        {
            // Same fp32 table as Rope so positions match the CPU model bit for bit.
            int hd = config.HeadDim, half = hd / 2, ctx = config.ContextLength;
            var cos = new float[ctx * half];
            var sin = new float[ctx * half];
            for (int i = 0; i < half; i++)
            {
                float invFreq = (float)(1.0 / Math.Pow(config.RopeTheta, (2.0 * i) / hd));
                for (int p = 0; p < ctx; p++)
                {
                    float angle = p * invFreq;
                    cos[p * half + i] = MathF.Cos(angle);
                    sin[p * half + i] = MathF.Sin(angle);
                }
            }

            ropeCos = acc.Allocate1D(cos);
            ropeSin = acc.Allocate1D(sin);
        }
    }

    public TransformerConfig Config { get; }

    internal Accelerator Accelerator => acc;

    internal KernelDevice Device => device;

    internal TransformerDeviceKernels LayerKernels => k;

    internal VocabularyDeviceKernels VocabularyKernels => vocab;

    internal IDeviceGemm Gemm => gemm;

    public ParameterLayout Layout { get; }

    /// <summary>Parameters on the device, in <see cref="Layout"/> order.</summary>
    public ArrayView<float> Parameters => parameters.View;

    /// <summary>Gradients on the device (same layout), accumulated by <see cref="Backward"/>.</summary>
    public ArrayView<float> Gradients => gradients.View;

    /// <summary>Logits [batch·seq, vocab] of the last <see cref="Forward"/> (dLogits after <see cref="CrossEntropy"/>).</summary>
    public ArrayView<float> Logits => acts.Logits.View.SubView(0, (long)acts.N * Config.VocabSize);

    /// <summary>Copies a host parameter buffer (e.g. <see cref="TransformerModel.Parameters"/>) to the device.</summary>
    public void UploadParameters(ReadOnlySpan<float> source)
    {
        if (source.Length != Layout.TotalLength) throw new ArgumentException($"source has {source.Length} elements, the layout {Layout.TotalLength}.", nameof(source));
        parameters.View.CopyFromCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(source), source.Length);
    }

    public void DownloadParameters(Span<float> destination) => Download(parameters.View, destination, nameof(destination));

    public void DownloadGradients(Span<float> destination) => Download(gradients.View, destination, nameof(destination));

    /// <summary>Copies the logits (or, after <see cref="CrossEntropy"/>, dLogits) of the last forward: [batch·seq·vocab].</summary>
    public void DownloadLogits(Span<float> destination)
    {
        if (!haveForward || !haveLogits) throw new InvalidOperationException("no forward with logits yet.");
        Download(Logits, destination, nameof(destination));
    }

    /// <summary>Zeroes the trained weights' gradients (the base's, or the adapter's when one is attached).</summary>
    public void ZeroGradients() => TrainableGradients.MemSetToZero();

    /// <summary>
    /// tokens [batch, seq], mask [batch, seq] (1 real, 0 padding) → activations and logits on the device, as
    /// <see cref="TransformerModel.Forward"/> with computeLogits and no adapter.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq) => Forward(tokens, mask, batch, seq, computeLogits: true);

    /// <summary>
    /// As <see cref="Forward(ReadOnlySpan{int}, ReadOnlySpan{float}, int, int)"/>; with <paramref name="computeLogits"/>
    /// false only the final hidden states are made (heads and <see cref="LogitRows"/> read them), no [N, V] product.
    /// <paramref name="useAdapter"/> = false runs the frozen base (the PPO reference) while an adapter stays attached;
    /// such a forward cannot be followed by a backward.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq, bool computeLogits, bool useAdapter = true)
    {
        CheckBatch(tokens, mask, batch, seq);
        forwardSkippedAdapter = adapter != null && !useAdapter;
        var c = Config;
        acts.Ensure(batch, seq);
        int n = batch * seq, d = c.ModelDim, L = c.LayerCount, qkvDim = c.QkvDim, hhd = c.HeadCount * c.HeadDim;
        var pos = HostInts(n).AsSpan(0, n);
        Embedding.PositionsFromMask(mask, pos, batch, seq);
        Upload(acts.Tokens, tokens);
        Upload(acts.Positions, pos);
        Upload(acts.Mask, mask);
        var tok = acts.Tokens.View.SubView(0, n);
        var positions = acts.Positions.View.SubView(0, n);
        var maskView = acts.Mask.View.SubView(0, n);
        k.EmbeddingForward(tok, positions, P(Layout.TokenEmbedding, c.VocabSize * d),
            Layout.PositionEmbedding >= 0 ? P(Layout.PositionEmbedding, c.ContextLength * d) : default, S.Slice(acts.Resid, 0, n * d), n, d);
        for (int l = 0; l < L; l++)
        {
            var ly = Layout.Layers[l];
            var x = S.Slice(acts.Resid, l, n * d);
            var ln1 = S.Slice(acts.Norm1, l, n * d);
            NormForward(x, ln1, ly.Norm1Weight, ly.Norm1Bias, S.Slice(acts.Mean1, l, n), S.Slice(acts.Rstd1, l, n), n);
            var qkv = S.Slice(acts.Qkv, l, n * qkvDim);
            LinearForward(ly.Qkv, ln1, qkv, n);
            AdapterForward(l, 0, ln1, qkv, n);
            if (ropeCos != null)
            {
                k.Rope(qkv, positions, ropeCos.View, ropeSin!.View, n, qkvDim, 0, c.HeadCount, c.HeadDim, inverse: false);
                k.Rope(qkv, positions, ropeCos.View, ropeSin!.View, n, qkvDim, hhd, c.KvHeadCount, c.HeadDim, inverse: false);
            }

            var att = S.Slice(acts.Att, l, n * hhd);
            k.AttentionForward(qkv, maskView, att, S.Slice(acts.Lse, l, n * c.HeadCount), batch, seq, c.HeadCount, c.KvHeadCount, c.HeadDim);
            var r2 = S.Slice(acts.Resid2, l, n * d);
            LinearForward(ly.AttnOut, att, r2, n);
            AdapterForward(l, 1, att, r2, n);
            k.Add(r2, x, r2);
            var ln2 = S.Slice(acts.Norm2, l, n * d);
            NormForward(r2, ln2, ly.Norm2Weight, ly.Norm2Bias, S.Slice(acts.Mean2, l, n), S.Slice(acts.Rstd2, l, n), n);
            var up = S.Slice(acts.Up, l, n * c.UpDim);
            LinearForward(ly.Up, ln2, up, n);
            AdapterForward(l, 2, ln2, up, n);
            var act = S.Slice(acts.Act, l, n * c.HiddenDim);
            if (c.Family == ModelFamily.Gpt2) k.GeluForward(up, act);
            else k.SwiGluForward(up, act, n, c.HiddenDim);
            var next = S.Slice(acts.Resid, l + 1, n * d);
            LinearForward(ly.Down, act, next, n);
            AdapterForward(l, 3, act, next, n);
            k.Add(next, r2, next);
        }

        var nf = S.Slice(acts.NormF, 0, n * d);
        NormForward(S.Slice(acts.Resid, L, n * d), nf, Layout.FinalNormWeight, Layout.FinalNormBias, S.Slice(acts.MeanF, 0, n), S.Slice(acts.RstdF, 0, n), n);
        if (computeLogits) gemm.Multiply(nf, P(Layout.LmHead, c.VocabSize * d), Logits, n, c.VocabSize, d, transposeB: true);
        haveForward = true;
        haveLogits = computeLogits;
        haveDLogits = false;
    }

    /// <summary>
    /// targets, weights [batch·seq] → the weighted cross-entropy of the last forward's logits, as
    /// <see cref="CausalLmLoss.Forward"/> (gradScale 1): returns Σ w·(lse − z[target]) / Σ w and turns the device
    /// logits into dLogits in place (fused, no second [N, V] buffer). Only the per-row log-probabilities come back.
    /// Unlike the CPU loss (NaN), a NaN or +∞ logit throws the <see cref="ArgumentException"/> of
    /// <see cref="VocabularyDeviceKernels.ThrowIfInvalid"/> naming the row and column.
    /// </summary>
    public float CrossEntropy(ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, float gradScale = 1f)
    {
        if (!float.IsFinite(gradScale)) throw new ArgumentOutOfRangeException(nameof(gradScale), gradScale, "must be finite.");
        if (!haveForward || !haveLogits || haveDLogits) throw new InvalidOperationException("CrossEntropy needs a fresh Forward.");
        int n = acts.N, v = Config.VocabSize;
        if (targets.Length != n) throw new ArgumentException($"targets has {targets.Length} elements, needs {n}.", nameof(targets));
        if (weights.Length != n) throw new ArgumentException($"weights has {weights.Length} elements, needs {n}.", nameof(weights));
        double wsum = 0;
        var t = HostInts(n).AsSpan(0, n);
        var g = HostFloats(n).AsSpan(0, n);
        for (int i = 0; i < n; i++)
        {
            float w = weights[i];
            if (w < 0f || float.IsNaN(w)) throw new ArgumentOutOfRangeException(nameof(weights), w, $"weight at index {i} must be >= 0.");
            if (w != 0f && (uint)targets[i] >= (uint)v)
                throw new ArgumentOutOfRangeException(nameof(targets), targets[i], $"target at index {i} is outside [0, {v}).");
            t[i] = w != 0f ? targets[i] : 0; // an ignored row's target is never read, but the kernel needs a valid id
            wsum += w;
        }

        haveDLogits = true;
        if (wsum == 0)
        {
            Logits.MemSetToZero();
            return 0f;
        }

        for (int i = 0; i < n; i++) g[i] = (float)(-weights[i] * (double)gradScale / wsum);
        Upload(acts.Targets, t);
        Upload(acts.RowGradLogProbs, g);
        var tv = acts.Targets.View.SubView(0, n);
        var logProbs = acts.RowLogProbs.View.SubView(0, n);
        var entropy = acts.RowEntropy.View.SubView(0, n);
        var lse = acts.RowLse.View.SubView(0, n);
        var status = acts.Status.View.SubView(0, n);
        var gradEntropy = acts.RowGradEntropy.View.SubView(0, n);
        gradEntropy.MemSetToZero();
        vocab.TokenStatistics(Logits, tv, v, 1f, logProbs, entropy, lse, status);
        vocab.TokenStatisticsBackward(Logits, tv, v, 1f, lse, entropy, acts.RowGradLogProbs.View.SubView(0, n), gradEntropy);
        acc.Synchronize();
        status.CopyToCPU(ref t[0], n);
        VocabularyDeviceKernels.ThrowIfInvalid(t);
        logProbs.CopyToCPU(ref g[0], n);
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            if (weights[i] != 0f) loss -= weights[i] * (double)g[i];
        }

        return (float)(loss / wsum);
    }

    /// <summary>
    /// Backward of the last forward from the dLogits left by <see cref="CrossEntropy"/>: gradients are added into
    /// <see cref="Gradients"/> (the base model trains), as <see cref="TransformerModel.Backward"/>.
    /// </summary>
    public void Backward()
    {
        if (!haveDLogits) throw new InvalidOperationException("Backward needs Forward then CrossEntropy.");
        var c = Config;
        int n = acts.N, d = c.ModelDim;
        var nf = S.Slice(acts.NormF, 0, n * d);
        var dnf = S.Slice(acts.DNorm, 0, n * d);
        var lm = P(Layout.LmHead, c.VocabSize * d);
        gemm.Multiply(Logits, lm, dnf, n, d, c.VocabSize);
        if (TrainsBase) gemm.Multiply(Logits, nf, G(Layout.LmHead, c.VocabSize * d), c.VocabSize, d, n, transposeA: true, accumulate: true);
        BackwardFromHidden();
    }

    /// <summary>The backward below the final norm's output: reads dHidden from <see cref="HiddenGradient"/>.</summary>
    private void BackwardFromHidden()
    {
        if (forwardSkippedAdapter) throw new InvalidOperationException("the last forward ran without the adapter; it has no backward.");
        var c = Config;
        int batch = acts.Batch, seq = acts.Seq, n = acts.N, d = c.ModelDim, L = c.LayerCount, qkvDim = c.QkvDim, hhd = c.HeadCount * c.HeadDim;
        var dnf = S.Slice(acts.DNorm, 0, n * d);
        var dres = S.Slice(acts.DResid, 0, n * d);
        dres.MemSetToZero();
        NormBackward(dnf, S.Slice(acts.Resid, L, n * d), dres, Layout.FinalNormWeight, Layout.FinalNormBias, S.Slice(acts.MeanF, 0, n), S.Slice(acts.RstdF, 0, n), n);
        var positions = acts.Positions.View.SubView(0, n);
        var maskView = acts.Mask.View.SubView(0, n);
        for (int l = L - 1; l >= 0; l--)
        {
            var ly = Layout.Layers[l];
            var act = S.Slice(acts.Act, l, n * c.HiddenDim);
            var dact = S.Slice(acts.DAct, 0, n * c.HiddenDim);
            LinearBackward(ly.Down, dres, act, dact, n);
            AdapterBackward(l, 3, dres, act, dact, n);
            var up = S.Slice(acts.Up, l, n * c.UpDim);
            var dup = S.Slice(acts.DUp, 0, n * c.UpDim);
            if (c.Family == ModelFamily.Gpt2) k.GeluBackward(up, dact, dup);
            else k.SwiGluBackward(up, dact, dup, n, c.HiddenDim);
            var dnorm = S.Slice(acts.DNorm, 0, n * d);
            LinearBackward(ly.Up, dup, S.Slice(acts.Norm2, l, n * d), dnorm, n);
            AdapterBackward(l, 2, dup, S.Slice(acts.Norm2, l, n * d), dnorm, n);
            NormBackward(dnorm, S.Slice(acts.Resid2, l, n * d), dres, ly.Norm2Weight, ly.Norm2Bias, S.Slice(acts.Mean2, l, n), S.Slice(acts.Rstd2, l, n), n);
            var datt = S.Slice(acts.DAtt, 0, n * hhd);
            LinearBackward(ly.AttnOut, dres, S.Slice(acts.Att, l, n * hhd), datt, n);
            AdapterBackward(l, 1, dres, S.Slice(acts.Att, l, n * hhd), datt, n);
            var dqkv = S.Slice(acts.DQkv, 0, n * qkvDim);
            k.AttentionBackward(datt, S.Slice(acts.Qkv, l, n * qkvDim), maskView, S.Slice(acts.Att, l, n * hhd), S.Slice(acts.Lse, l, n * c.HeadCount),
                S.Slice(acts.Delta, 0, n * c.HeadCount), dqkv, batch, seq, c.HeadCount, c.KvHeadCount, c.HeadDim);
            if (ropeCos != null)
            {
                k.Rope(dqkv, positions, ropeCos.View, ropeSin!.View, n, qkvDim, 0, c.HeadCount, c.HeadDim, inverse: true);
                k.Rope(dqkv, positions, ropeCos.View, ropeSin!.View, n, qkvDim, hhd, c.KvHeadCount, c.HeadDim, inverse: true);
            }

            LinearBackward(ly.Qkv, dqkv, S.Slice(acts.Norm1, l, n * d), dnorm, n);
            AdapterBackward(l, 0, dqkv, S.Slice(acts.Norm1, l, n * d), dnorm, n);
            NormBackward(dnorm, S.Slice(acts.Resid, l, n * d), dres, ly.Norm1Weight, ly.Norm1Bias, S.Slice(acts.Mean1, l, n), S.Slice(acts.Rstd1, l, n), n);
        }

        if (TrainsBase)
        {
            k.EmbeddingBackward(dres, acts.Tokens.View.SubView(0, n), positions, G(Layout.TokenEmbedding, c.VocabSize * d),
                Layout.PositionEmbedding >= 0 ? G(Layout.PositionEmbedding, c.ContextLength * d) : default, n, d);
        }

        haveDLogits = false;
        haveForward = false;
    }

    /// <summary>
    /// One AdamW step over the trained weights on the device (every base weight, or the adapter when one is attached;
    /// PyTorch semantics, as <c>AdamW.Step</c>); moments are created on first use.
    /// </summary>
    public void AdamWStep(int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01)
    {
        var p = TrainableParameters;
        if (firstMoment is null || firstMoment.Length != p.Length)
        {
            firstMoment?.Dispose();
            secondMoment?.Dispose();
            firstMoment = acc.Allocate1D<float>(p.Length);
            secondMoment = acc.Allocate1D<float>(p.Length);
            firstMoment.MemSetToZero();
            secondMoment.MemSetToZero();
        }

        Optim.AdamWStep(p, TrainableGradients, firstMoment.View, secondMoment!.View, step, learningRate, beta1, beta2, epsilon, weightDecay);
    }

    /// <summary>
    /// Global L2 norm of the trained weights' gradients (torch's clip_grad_norm_): when finite and above
    /// <paramref name="maxNorm"/>, every gradient is scaled by maxNorm / (norm + 1e−6). A NaN/∞ norm is returned with
    /// the gradients unscaled, as <c>Rlhf.Training.GradientClipping.ClipGlobalNorm</c>.
    /// </summary>
    public double ClipGradients(float maxNorm)
    {
        if (!(maxNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "must be positive.");
        var g = TrainableGradients;
        float norm = Optim.GlobalNorm(g, default);
        if (float.IsFinite(norm) && norm > maxNorm)
        {
            float coef = maxNorm / (norm + 1e-6f);
            if (coef < 1f) Optim.Scale(g, coef);
        }

        return norm;
    }

    /// <summary>The AdamW / clipping kernels of this device, loaded on first use.</summary>
    internal DeviceOptimKernels Optim => optim ??= new DeviceOptimKernels(device);

    /// <summary>Waits for every launched kernel and matrix product.</summary>
    public void Synchronize() => acc.Synchronize();

    public void Dispose()
    {
        acc.Synchronize();
        optim?.Dispose();
        firstMoment?.Dispose();
        secondMoment?.Dispose();
        ropeCos?.Dispose();
        ropeSin?.Dispose();
        acts.Dispose();
        DisposeAdapter();
        k.Dispose();
        gemm.Dispose();
        parameters.Dispose();
        gradients.Dispose();
        if (ownsDevice) device.Dispose();
    }

    private ArrayView<float> P(int offset, long length) => parameters.View.SubView(offset, length);

    private ArrayView<float> G(int offset, long length) => gradients.View.SubView(offset, length);

    private void NormForward(ArrayView<float> x, ArrayView<float> y, int w, int b, ArrayView<float> mean, ArrayView<float> rstd, int n)
    {
        int d = Config.ModelDim;
        if (Config.Family == ModelFamily.Gpt2) k.LayerNormForward(x, P(w, d), P(b, d), y, mean, rstd, n, d, Config.NormEps);
        else k.RmsNormForward(x, P(w, d), y, rstd, n, d, Config.NormEps);
    }

    private void NormBackward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx, int w, int b, ArrayView<float> mean, ArrayView<float> rstd, int n)
    {
        int d = Config.ModelDim;
        if (Config.Family == ModelFamily.Gpt2) k.LayerNormBackward(dy, x, P(w, d), mean, rstd, dx, G(w, d), G(b, d), n, d, trainWeights: TrainsBase);
        else k.RmsNormBackward(dy, x, P(w, d), rstd, dx, G(w, d), n, d, trainWeights: TrainsBase);
    }

    /// <summary>x [n,in] → y [n,out] = x·W (+ b): Conv1D W is [in,out], Linear W is [out,in].</summary>
    private void LinearForward(LinearGroup g, ArrayView<float> x, ArrayView<float> y, int n)
    {
        gemm.Multiply(x, P(g.WeightOffset, (long)g.In * g.Out), y, n, g.Out, g.In, transposeB: !g.Conv1D);
        if (g.BiasOffset >= 0) k.AddBias(y, P(g.BiasOffset, g.Out), n, g.Out);
    }

    /// <summary>dy [n,out] → dx [n,in] (overwritten), dW and db added while the base trains.</summary>
    private void LinearBackward(LinearGroup g, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx, int n)
    {
        long wl = (long)g.In * g.Out;
        gemm.Multiply(dy, P(g.WeightOffset, wl), dx, n, g.In, g.Out, transposeB: g.Conv1D);
        if (!TrainsBase) return;
        if (g.Conv1D) gemm.Multiply(x, dy, G(g.WeightOffset, wl), g.In, g.Out, n, transposeA: true, accumulate: true);
        else gemm.Multiply(dy, x, G(g.WeightOffset, wl), g.Out, g.In, n, transposeA: true, accumulate: true);
        if (g.BiasOffset >= 0) k.BiasBackward(dy, G(g.BiasOffset, g.Out), n, g.Out);
    }

    private void CheckBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seq);
        if (seq > Config.ContextLength) throw new ArgumentOutOfRangeException(nameof(seq), seq, $"longer than the context length {Config.ContextLength}.");
        if (tokens.Length != batch * seq) throw new ArgumentException($"tokens has {tokens.Length} elements, needs batch*seq = {batch * seq}.", nameof(tokens));
        if (mask.Length != batch * seq) throw new ArgumentException($"mask has {mask.Length} elements, needs batch*seq = {batch * seq}.", nameof(mask));
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] != 0f && mask[i] != 1f) throw new ArgumentException($"mask[{i}] = {mask[i]} is not 0 or 1.", nameof(mask));
            if ((uint)tokens[i] >= (uint)Config.VocabSize) throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"token at index {i} is outside [0, {Config.VocabSize}).");
        }
    }

    private int[] HostInts(int n)
    {
        if (hostInts.Length < n) hostInts = new int[n];
        return hostInts;
    }

    private float[] HostFloats(int n)
    {
        if (hostFloats.Length < n) hostFloats = new float[n];
        return hostFloats;
    }

    private static void Upload<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, ReadOnlySpan<T> data) where T : unmanaged
    {
        if (data.IsEmpty) return;
        buffer.View.SubView(0, data.Length).CopyFromCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data), data.Length);
    }

    private static void Download(ArrayView<float> source, Span<float> destination, string name)
    {
        if (destination.Length != source.Length) throw new ArgumentException($"{name} has {destination.Length} elements, needs {source.Length}.", name);
        if (destination.IsEmpty) return;
        source.CopyToCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(destination), destination.Length);
    }
}
