using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>
/// A GPT-2 or Llama decoder with hand-written forward and backward passes (no autograd). Parameters live in one flat
/// buffer described by <see cref="Layout"/>; <see cref="Gradients"/> has the same layout and is accumulated into by
/// <see cref="Backward"/> (call <see cref="ZeroGradients"/> between optimizer steps). With a LoRA adapter attached
/// the base weights are frozen and only the adapter's gradients are computed.
/// </summary>
public sealed partial class TransformerModel
{
    private readonly TransformerActivations acts;
    private readonly Rope? rope;
    private int[] lastTokens = [];
    private bool forwardUsedAdapter;
    private bool forwardComputedLogits;
    private bool pendingHiddenGradient;
    private bool haveForward;

    public TransformerModel(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Layout = new ParameterLayout(config);
        Config = config;
        Parameters = new float[Layout.TotalLength];
        Gradients = new float[Layout.TotalLength];
        acts = new TransformerActivations(config);
        if (config.Family == ModelFamily.Llama) rope = new Rope(config.HeadDim, config.ContextLength, config.RopeTheta);
    }

    public TransformerConfig Config { get; }

    /// <summary>When set, every layer call of <see cref="Forward"/>, <see cref="Backward"/>, <see cref="ForwardCached"/> and the logits helpers adds its wall time here.</summary>
    public LayerProfile? Profiler { get; set; }

    public ParameterLayout Layout { get; }

    /// <summary>All base weights, in <see cref="Layout"/> order.</summary>
    public float[] Parameters { get; }

    /// <summary>Gradients of the base weights (same layout); untouched while an adapter is attached.</summary>
    public float[] Gradients { get; }

    /// <summary>The attached LoRA adapter, or null.</summary>
    public LoraAdapter? Adapter { get; private set; }

    /// <summary>True when base weights receive gradients (no adapter attached).</summary>
    public bool TrainsBase => Adapter is null;

    /// <summary>Logits [batch, seq, vocab] of the last <see cref="Forward"/> that computed them.</summary>
    public ReadOnlySpan<float> Logits => acts.Logits.AsSpan(0, acts.N * Config.VocabSize);

    /// <summary>Final hidden states [batch, seq, d] (after the final norm) of the last <see cref="Forward"/>: the input of the heads.</summary>
    public ReadOnlySpan<float> FinalHidden => acts.NormF.AsSpan(0, acts.N * Config.ModelDim);

    /// <summary>The view of one named base tensor.</summary>
    public Span<float> Tensor(string name)
    {
        var t = Layout.Get(name);
        return Parameters.AsSpan(t.Offset, t.Length);
    }

    /// <summary>Copies <paramref name="data"/> into the named tensor; its length must equal the tensor's.</summary>
    public void LoadTensor(string name, ReadOnlySpan<float> data)
    {
        var t = Layout.Get(name);
        if (data.Length != t.Length)
            throw new ArgumentException($"tensor '{name}' has {t.Length} elements ([{string.Join(",", t.Shape)}]), got {data.Length}.", nameof(data));
        data.CopyTo(Parameters.AsSpan(t.Offset, t.Length));
    }

    /// <summary>GPT-2-style init: weights ~ N(0, std²), norm weights 1, biases 0.</summary>
    public void InitializeRandom(ulong seed, float std = 0.02f)
    {
        var rng = new Xoshiro256(seed);
        foreach (var t in Layout.Tensors)
        {
            var p = Parameters.AsSpan(t.Offset, t.Length);
            bool norm = t.Name.Contains("ln_", StringComparison.Ordinal) || t.Name.Contains("norm", StringComparison.Ordinal);
            if (t.Shape.Length == 1) p.Fill(norm && t.Name.EndsWith(".weight", StringComparison.Ordinal) ? 1f : 0f);
            else for (int i = 0; i < p.Length; i++) p[i] = (float)(std * rng.NextGaussian());
        }
    }

    public void ZeroGradients()
    {
        Array.Clear(Gradients);
        if (Adapter != null) Array.Clear(Adapter.Gradients);
    }

    /// <summary>Attaches a fresh LoRA adapter (PEFT init from <paramref name="seed"/>); the base is frozen from now on.</summary>
    public LoraAdapter AttachAdapter(LoraConfig config, ulong seed)
    {
        if (Adapter != null) throw new InvalidOperationException("an adapter is already attached; merge or detach it first.");
        var a = new LoraAdapter(Layout, config);
        a.InitializePeft(seed);
        Adapter = a;
        haveForward = false;
        return a;
    }

    /// <summary>Removes the adapter without changing the base weights.</summary>
    public void DetachAdapter()
    {
        Adapter = null;
        haveForward = false;
    }

    /// <summary>Folds the adapter into the base weights (W += scale·B·A, transposed for Conv1D) and detaches it.</summary>
    public void MergeAdapter()
    {
        var a = Adapter ?? throw new InvalidOperationException("no adapter attached.");
        int r = a.Rank;
        foreach (var s in a.Slots)
        {
            var g = LoraAdapter.Group(Layout.Layers[s.Layer], s.Group);
            var part = g.Parts[s.Part];
            var A = a.Parameters.AsSpan(s.AOffset, r * s.In);
            var B = a.Parameters.AsSpan(s.BOffset, s.Out * r);
            for (int o = 0; o < s.Out; o++)
            {
                for (int i = 0; i < s.In; i++)
                {
                    float dlt = 0;
                    for (int k = 0; k < r; k++) dlt += B[o * r + k] * A[k * s.In + i];
                    int col = part.ColumnOffset + o;
                    int idx = g.Conv1D ? g.WeightOffset + i * g.Out + col : g.WeightOffset + col * g.In + i;
                    Parameters[idx] += a.Scale * dlt;
                }
            }
        }

        DetachAdapter();
    }

    /// <summary>
    /// tokens [batch, seq], mask [batch, seq] (1 = real token, 0 = padding; left or right) -> activations for
    /// <see cref="Backward"/>, <see cref="FinalHidden"/> and, when <paramref name="computeLogits"/>, <see cref="Logits"/>.
    /// Positions are max(cumsum(mask) − 1, 0). <paramref name="useAdapter"/> = false runs the frozen base model
    /// (the PPO reference) while an adapter stays attached.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int batch, int seq, bool computeLogits = true, bool useAdapter = true)
    {
        CheckBatch(tokens, mask, batch, seq);
        var c = Config;
        var lora = useAdapter ? Adapter : null;
        acts.Ensure(batch, seq, Adapter);
        int n = batch * seq, d = c.ModelDim, L = c.LayerCount, qkvDim = c.QkvDim, hhd = c.HeadCount * c.HeadDim;
        var P = Parameters.AsSpan();
        var pos = acts.Positions.AsSpan(0, n);
        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        const ProfilePass F = ProfilePass.Forward;
        Embedding.PositionsFromMask(mask, pos, batch, seq);
        Embedding.Forward(tokens, pos, P.Slice(Layout.TokenEmbedding, c.VocabSize * d),
            Layout.PositionEmbedding >= 0 ? P.Slice(Layout.PositionEmbedding, c.ContextLength * d) : default,
            acts.Resid.AsSpan(0, n * d), n, d, c.VocabSize);
        prof?.Lap(LayerKind.Embedding, F, ref mark);
        for (int l = 0; l < L; l++)
        {
            var ly = Layout.Layers[l];
            var x = acts.Resid.AsSpan(l * n * d, n * d);
            var ln1 = acts.Norm1.AsSpan(l * n * d, n * d);
            NormForward(x, ln1, ly.Norm1Weight, ly.Norm1Bias, acts.Mean1.AsSpan(l * n, n), acts.Rstd1.AsSpan(l * n, n), n);
            prof?.Lap(LayerKind.Norm, F, ref mark);
            var qkv = acts.Qkv.AsSpan(l * n * qkvDim, n * qkvDim);
            ProjectForward(l, 0, ln1, qkv, n, lora, acts.LoraXa, acts.LoraDelta);
            prof?.Lap(LayerKind.QkvMatmul, F, ref mark);
            if (rope != null)
            {
                rope.Apply(qkv, qkvDim, 0, c.HeadCount, pos, n, inverse: false);
                rope.Apply(qkv, qkvDim, hhd, c.KvHeadCount, pos, n, inverse: false);
                prof?.Lap(LayerKind.Rope, F, ref mark);
            }

            var att = acts.Att.AsSpan(l * n * hhd, n * hhd);
            CausalAttention.Forward(qkv, mask, att, acts.Probs.AsSpan(l * batch * c.HeadCount * seq * seq, batch * c.HeadCount * seq * seq), batch, seq, c.HeadCount, c.KvHeadCount, c.HeadDim);
            prof?.Lap(LayerKind.AttentionCore, F, ref mark);
            var r2 = acts.Resid2.AsSpan(l * n * d, n * d);
            ProjectForward(l, 1, att, r2, n, lora, acts.LoraXa, acts.LoraDelta);
            prof?.Lap(LayerKind.AttentionProjectionMatmul, F, ref mark);
            TensorPrimitives.Add(r2, x, r2);
            prof?.Lap(LayerKind.ResidualAdd, F, ref mark);
            var ln2 = acts.Norm2.AsSpan(l * n * d, n * d);
            NormForward(r2, ln2, ly.Norm2Weight, ly.Norm2Bias, acts.Mean2.AsSpan(l * n, n), acts.Rstd2.AsSpan(l * n, n), n);
            prof?.Lap(LayerKind.Norm, F, ref mark);
            var up = acts.Up.AsSpan(l * n * c.UpDim, n * c.UpDim);
            ProjectForward(l, 2, ln2, up, n, lora, acts.LoraXa, acts.LoraDelta);
            prof?.Lap(LayerKind.MlpUpMatmul, F, ref mark);
            var act = acts.Act.AsSpan(l * n * c.HiddenDim, n * c.HiddenDim);
            if (c.Family == ModelFamily.Gpt2) GeluTanh.Forward(up, act);
            else SwiGlu.Forward(up, act, n, c.HiddenDim);
            prof?.Lap(LayerKind.Activation, F, ref mark);
            var next = acts.Resid.AsSpan((l + 1) * n * d, n * d);
            ProjectForward(l, 3, act, next, n, lora, acts.LoraXa, acts.LoraDelta);
            prof?.Lap(LayerKind.MlpDownMatmul, F, ref mark);
            TensorPrimitives.Add(next, r2, next);
            prof?.Lap(LayerKind.ResidualAdd, F, ref mark);
        }

        var nf = acts.NormF.AsSpan(0, n * d);
        NormForward(acts.Resid.AsSpan(L * n * d, n * d), nf, Layout.FinalNormWeight, Layout.FinalNormBias, acts.MeanF, acts.RstdF, n);
        prof?.Lap(LayerKind.Norm, F, ref mark);
        if (computeLogits)
        {
            Gemm.Multiply(nf, P.Slice(Layout.LmHead, c.VocabSize * d), acts.Logits, n, c.VocabSize, d, transposeB: true);
            prof?.Lap(LayerKind.LmHeadMatmul, F, ref mark);
        }
        forwardUsedAdapter = lora != null;
        forwardComputedLogits = computeLogits;
        pendingHiddenGradient = false;
        haveForward = true;
    }

    /// <summary>
    /// Logits for rows [rowStart, rowStart + rowCount) of the flattened [batch·seq] positions of the last
    /// <see cref="Forward"/> (run it with computeLogits: false to avoid the full [batch, seq, vocab] buffer):
    /// logits [rowCount, vocab] = FinalHidden[rows]·LMheadᵀ.
    /// </summary>
    public void ComputeLogits(int rowStart, int rowCount, Span<float> logits)
    {
        CheckRows(rowStart, rowCount);
        int d = Config.ModelDim, v = Config.VocabSize;
        if (logits.Length != rowCount * v) throw new ArgumentException($"logits has {logits.Length} elements, needs rowCount*vocab = {rowCount * v}.", nameof(logits));
        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        Gemm.Multiply(acts.NormF.AsSpan(rowStart * d, rowCount * d), Parameters.AsSpan(Layout.LmHead, v * d), logits, rowCount, v, d, transposeB: true);
        prof?.Lap(LayerKind.LmHeadMatmul, ProfilePass.Forward, ref mark);
    }

    /// <summary>
    /// Backward of <see cref="ComputeLogits"/> for one chunk: dLogits [rowCount, vocab] -> the LM head's weight
    /// gradient (when the base trains) and a pending gradient w.r.t. FinalHidden that the next
    /// <see cref="Backward"/> adds to its dHidden. Chunks may come in any order; each row at most once per step.
    /// </summary>
    public void AccumulateLogitsGradient(int rowStart, int rowCount, ReadOnlySpan<float> dLogits)
    {
        CheckRows(rowStart, rowCount);
        int d = Config.ModelDim, v = Config.VocabSize;
        if (dLogits.Length != rowCount * v) throw new ArgumentException($"dLogits has {dLogits.Length} elements, needs rowCount*vocab = {rowCount * v}.", nameof(dLogits));
        var pending = PendingHiddenGradient();
        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        Gemm.Multiply(dLogits, Parameters.AsSpan(Layout.LmHead, v * d), pending.Slice(rowStart * d, rowCount * d), rowCount, d, v, accumulate: true);
        if (TrainsBase)
            Gemm.Multiply(dLogits, acts.NormF.AsSpan(rowStart * d, rowCount * d), Gradients.AsSpan(Layout.LmHead, v * d), v, d, rowCount, transposeA: true, accumulate: true);
        prof?.Lap(LayerKind.LmHeadMatmul, ProfilePass.Backward, ref mark);
    }

    /// <summary>The gradient w.r.t. FinalHidden that the logit chunks accumulate into until the next <see cref="Backward"/>.</summary>
    private Span<float> PendingHiddenGradient()
    {
        int n = acts.N * Config.ModelDim;
        if (!pendingHiddenGradient)
        {
            acts.DNormF.AsSpan(0, n).Clear();
            pendingHiddenGradient = true;
        }

        return acts.DNormF.AsSpan(0, n);
    }

    private void CheckRows(int rowStart, int rowCount)
    {
        if (!haveForward) throw new InvalidOperationException("needs a Forward first.");
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > acts.N)
            throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, $"rows [{rowStart}, {rowStart + rowCount}) are outside [0, {acts.N}).");
    }

    /// <summary>
    /// Backward of the last <see cref="Forward"/>: dLogits [batch, seq, vocab] and/or dHidden [batch, seq, d] (the
    /// gradient w.r.t. <see cref="FinalHidden"/>, from a head); either may be empty; gradients accumulated by
    /// <see cref="AccumulateLogitsGradient"/> since the forward are included. Gradients are added into
    /// <see cref="Gradients"/> (or the adapter's when attached and used).
    /// </summary>
    public void Backward(ReadOnlySpan<float> dLogits, ReadOnlySpan<float> dHidden)
    {
        if (!haveForward) throw new InvalidOperationException("Backward needs a Forward first.");
        var c = Config;
        int batch = acts.Batch, seq = acts.Seq, n = acts.N, d = c.ModelDim, L = c.LayerCount, qkvDim = c.QkvDim, hhd = c.HeadCount * c.HeadDim;
        if (!dLogits.IsEmpty && !forwardComputedLogits) throw new InvalidOperationException("dLogits given, but the last Forward ran with computeLogits: false.");
        if (!dLogits.IsEmpty && dLogits.Length != n * c.VocabSize) throw new ArgumentException($"dLogits has {dLogits.Length} elements, needs {n * c.VocabSize}.", nameof(dLogits));
        if (!dHidden.IsEmpty && dHidden.Length != n * d) throw new ArgumentException($"dHidden has {dHidden.Length} elements, needs {n * d}.", nameof(dHidden));
        bool trainBase = TrainsBase;
        var lora = forwardUsedAdapter ? Adapter : null;
        var P = Parameters.AsSpan();
        var G = Gradients.AsSpan();
        var nf = acts.NormF.AsSpan(0, n * d);
        var dnf = acts.DNorm.AsSpan(0, n * d);
        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        const ProfilePass B = ProfilePass.Backward;
        if (dHidden.IsEmpty) dnf.Clear();
        else dHidden.CopyTo(dnf);
        if (pendingHiddenGradient)
        {
            TensorPrimitives.Add(dnf, acts.DNormF.AsSpan(0, n * d), dnf);
            pendingHiddenGradient = false;
        }

        if (!dLogits.IsEmpty)
        {
            Gemm.Multiply(dLogits, P.Slice(Layout.LmHead, c.VocabSize * d), dnf, n, d, c.VocabSize, accumulate: true);
            if (trainBase) Gemm.Multiply(dLogits, nf, G.Slice(Layout.LmHead, c.VocabSize * d), c.VocabSize, d, n, transposeA: true, accumulate: true);
            prof?.Lap(LayerKind.LmHeadMatmul, B, ref mark);
        }

        var dres = acts.DResid.AsSpan(0, n * d);
        dres.Clear();
        NormBackward(dnf, acts.Resid.AsSpan(L * n * d, n * d), dres, Layout.FinalNormWeight, Layout.FinalNormBias, acts.MeanF, acts.RstdF, n, trainBase);
        prof?.Lap(LayerKind.Norm, B, ref mark);
        for (int l = L - 1; l >= 0; l--)
        {
            var ly = Layout.Layers[l];
            var act = acts.Act.AsSpan(l * n * c.HiddenDim, n * c.HiddenDim);
            var dact = acts.DAct.AsSpan(0, n * c.HiddenDim);
            ProjectBackward(l, 3, dres, act, dact, n, lora, trainBase);
            prof?.Lap(LayerKind.MlpDownMatmul, B, ref mark);
            var up = acts.Up.AsSpan(l * n * c.UpDim, n * c.UpDim);
            var dup = acts.DUp.AsSpan(0, n * c.UpDim);
            if (c.Family == ModelFamily.Gpt2) GeluTanh.Backward(up, dact, dup);
            else SwiGlu.Backward(up, dact, dup, n, c.HiddenDim);
            prof?.Lap(LayerKind.Activation, B, ref mark);
            var dnorm = acts.DNorm.AsSpan(0, n * d);
            ProjectBackward(l, 2, dup, acts.Norm2.AsSpan(l * n * d, n * d), dnorm, n, lora, trainBase);
            prof?.Lap(LayerKind.MlpUpMatmul, B, ref mark);
            NormBackward(dnorm, acts.Resid2.AsSpan(l * n * d, n * d), dres, ly.Norm2Weight, ly.Norm2Bias, acts.Mean2.AsSpan(l * n, n), acts.Rstd2.AsSpan(l * n, n), n, trainBase);
            prof?.Lap(LayerKind.Norm, B, ref mark);
            var datt = acts.DAtt.AsSpan(0, n * hhd);
            ProjectBackward(l, 1, dres, acts.Att.AsSpan(l * n * hhd, n * hhd), datt, n, lora, trainBase);
            prof?.Lap(LayerKind.AttentionProjectionMatmul, B, ref mark);
            var qkv = acts.Qkv.AsSpan(l * n * qkvDim, n * qkvDim);
            var dqkv = acts.DQkv.AsSpan(0, n * qkvDim);
            CausalAttention.Backward(datt, qkv, acts.Probs.AsSpan(l * batch * c.HeadCount * seq * seq, batch * c.HeadCount * seq * seq), dqkv, acts.DAttScratch, batch, seq, c.HeadCount, c.KvHeadCount, c.HeadDim);
            prof?.Lap(LayerKind.AttentionCore, B, ref mark);
            if (rope != null)
            {
                var pos = acts.Positions.AsSpan(0, n);
                rope.Apply(dqkv, qkvDim, 0, c.HeadCount, pos, n, inverse: true);
                rope.Apply(dqkv, qkvDim, hhd, c.KvHeadCount, pos, n, inverse: true);
                prof?.Lap(LayerKind.Rope, B, ref mark);
            }

            ProjectBackward(l, 0, dqkv, acts.Norm1.AsSpan(l * n * d, n * d), dnorm, n, lora, trainBase);
            prof?.Lap(LayerKind.QkvMatmul, B, ref mark);
            NormBackward(dnorm, acts.Resid.AsSpan(l * n * d, n * d), dres, ly.Norm1Weight, ly.Norm1Bias, acts.Mean1.AsSpan(l * n, n), acts.Rstd1.AsSpan(l * n, n), n, trainBase);
            prof?.Lap(LayerKind.Norm, B, ref mark);
        }

        if (trainBase)
        {
            // Token ids were validated (and kept) by the forward.
            Embedding.Backward(dres, lastTokens.AsSpan(0, n), acts.Positions.AsSpan(0, n), G.Slice(Layout.TokenEmbedding, c.VocabSize * d),
                Layout.PositionEmbedding >= 0 ? G.Slice(Layout.PositionEmbedding, c.ContextLength * d) : default, n, d);
            prof?.Lap(LayerKind.Embedding, B, ref mark);
        }
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
        }

        if (lastTokens.Length < tokens.Length) lastTokens = new int[tokens.Length];
        tokens.CopyTo(lastTokens);
    }

    private void NormForward(ReadOnlySpan<float> x, Span<float> y, int w, int b, Span<float> mean, Span<float> rstd, int n)
    {
        int d = Config.ModelDim;
        var P = Parameters.AsSpan();
        if (Config.Family == ModelFamily.Gpt2) LayerNorm.Forward(x, P.Slice(w, d), P.Slice(b, d), y, mean, rstd, n, d, Config.NormEps);
        else RmsNorm.Forward(x, P.Slice(w, d), y, rstd, n, d, Config.NormEps);
    }

    private void NormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int w, int b, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, int n, bool trainBase)
    {
        int d = Config.ModelDim;
        var P = Parameters.AsSpan();
        var G = Gradients.AsSpan();
        if (Config.Family == ModelFamily.Gpt2)
            LayerNorm.Backward(dy, x, P.Slice(w, d), mean, rstd, dx, trainBase ? G.Slice(w, d) : default, trainBase ? G.Slice(b, d) : default, n, d);
        else
            RmsNorm.Backward(dy, x, P.Slice(w, d), rstd, dx, trainBase ? G.Slice(w, d) : default, n, d);
    }

    /// <summary>x [n,in] -> y [n,out] for linear group g of layer l, plus every adapted part's scale·(x·Aᵀ)·Bᵀ.</summary>
    private void ProjectForward(int l, int g, ReadOnlySpan<float> x, Span<float> y, int n, LoraAdapter? lora, Span<float> xaAll, Span<float> delta)
    {
        var grp = LoraAdapter.Group(Layout.Layers[l], g);
        var P = Parameters.AsSpan();
        LinearLayer.Forward(x, P.Slice(grp.WeightOffset, grp.In * grp.Out), grp.BiasOffset >= 0 ? P.Slice(grp.BiasOffset, grp.Out) : default, y, n, grp.In, grp.Out, grp.Conv1D);
        if (lora is null) return;
        int r = lora.Rank;
        for (int p = 0; p < grp.Parts.Length; p++)
        {
            int s = lora.SlotIndex(l, g, p);
            if (s < 0) continue;
            var slot = lora.Slots[s];
            var part = grp.Parts[p];
            var xa = xaAll.Slice(s * n * r, n * r);
            Gemm.Multiply(x, lora.Parameters.AsSpan(slot.AOffset, r * slot.In), xa, n, r, slot.In, transposeB: true);
            var dl = delta[..(n * slot.Out)];
            Gemm.Multiply(xa, lora.Parameters.AsSpan(slot.BOffset, slot.Out * r), dl, n, slot.Out, r, transposeB: true);
            for (int i = 0; i < n; i++)
            {
                var yr = y.Slice(i * grp.Out + part.ColumnOffset, slot.Out);
                TensorPrimitives.MultiplyAdd(dl.Slice(i * slot.Out, slot.Out), lora.Scale, yr, yr);
            }
        }
    }

    /// <summary>dy [n,out] -> dx [n,in] (overwritten); base weight grads when trainBase, adapter grads when lora is set.</summary>
    private void ProjectBackward(int l, int g, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int n, LoraAdapter? lora, bool trainBase)
    {
        var grp = LoraAdapter.Group(Layout.Layers[l], g);
        var P = Parameters.AsSpan();
        var G = Gradients.AsSpan();
        int wl = grp.In * grp.Out;
        LinearLayer.Backward(dy, x, P.Slice(grp.WeightOffset, wl), dx,
            trainBase ? G.Slice(grp.WeightOffset, wl) : default,
            trainBase && grp.BiasOffset >= 0 ? G.Slice(grp.BiasOffset, grp.Out) : default,
            n, grp.In, grp.Out, grp.Conv1D);
        if (lora is null) return;
        int r = lora.Rank;
        for (int p = 0; p < grp.Parts.Length; p++)
        {
            int s = lora.SlotIndex(l, g, p);
            if (s < 0) continue;
            var slot = lora.Slots[s];
            var part = grp.Parts[p];
            var xa = acts.LoraXa.AsSpan(s * n * r, n * r);
            var dsub = acts.LoraDelta.AsSpan(0, n * slot.Out);
            for (int i = 0; i < n; i++)
                TensorPrimitives.Multiply(dy.Slice(i * grp.Out + part.ColumnOffset, slot.Out), lora.Scale, dsub.Slice(i * slot.Out, slot.Out));
            var A = lora.Parameters.AsSpan(slot.AOffset, r * slot.In);
            var B = lora.Parameters.AsSpan(slot.BOffset, slot.Out * r);
            Gemm.Multiply(dsub, xa, lora.Gradients.AsSpan(slot.BOffset, slot.Out * r), slot.Out, r, n, transposeA: true, accumulate: true);
            var dxa = acts.LoraDxa.AsSpan(0, n * r);
            Gemm.Multiply(dsub, B, dxa, n, r, slot.Out);
            Gemm.Multiply(dxa, x, lora.Gradients.AsSpan(slot.AOffset, r * slot.In), r, slot.In, n, transposeA: true, accumulate: true);
            Gemm.Multiply(dxa, A, dx, n, slot.In, r, accumulate: true);
        }
    }
}
