using ILGPU;
using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Ppo;
using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>PPO hyper-parameters of one policy update (the fields of <c>PpoOptions</c> that the update reads).</summary>
/// <param name="RatioThreshold"><c>PpoOptions.RatioThreshold</c>; +∞, the default here, never skips.</param>
public readonly record struct PolicyUpdateSettings(
    float Temperature, float ClipRange, float ValueClipRange, float ValueCoef, float EntropyCoef, float MaxGradNorm,
    float LearningRate, float Beta1, float Beta2, float Epsilon, float WeightDecay, float RatioThreshold = float.PositiveInfinity);

/// <summary>What one minibatch update measured (as <c>PpoMetrics</c>' per-step fields).</summary>
/// <param name="Skipped">The mean ratio exceeded the threshold: the step ran with zero gradients and both losses read 0.</param>
public readonly record struct PolicyUpdateStats(
    float PolicyLoss, float ValueLoss, double Entropy, float ClipFraction, float ApproxKl, float ValueClipFraction, float GradNorm, bool Skipped = false);

/// <summary>
/// The PPO policy update on a device, mirroring <c>PpoTrainer.TrainMinibatch</c>: forward of the policy (LoRA on the
/// frozen base, or the full model), logits only for the response rows, token statistics, the value head, the clipped
/// policy loss + c1·value loss − c2·entropy, dLogits and dValues back through the head and the model into the trained
/// weights and the head (not for a minibatch skipped by the ratio threshold), one global-norm clip over both, and AdamW on both. Parameters, gradients, moments and
/// activations stay on the device; per step only the minibatch goes up and the statistics (and the per-token entropy,
/// for its mean) come back. <see cref="UploadState"/> / <see cref="DownloadState"/> move the trained state between the
/// host trainer and the device. The rollout API (<see cref="BeginRollout"/>, <see cref="RolloutLogProbsAndValues"/>,
/// <see cref="RolloutAdvantages"/>, <see cref="TrainRolloutMinibatch"/>) keeps a whole PPO iteration's per-token data
/// on the device as well, so an iteration sends up tokens, masks and scores and brings back only metrics.
/// </summary>
public sealed partial class DevicePolicyUpdate : IDisposable
{
    private readonly DeviceTransformer model;
    private readonly DeviceTransformer? reference;
    private readonly DevicePpoKernels ppo;
    private readonly Accelerator acc;
    private readonly int dim, vocab;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> head, headGrad, headM, headV, trainM, trainV;
    private readonly List<IDisposable> scratch = new();
    private MemoryBuffer1D<float, Stride1D.Dense> logits = null!, values = null!, valuesAll = null!, dScores = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> logp = null!, entropy = null!, lse = null!, gradLogp = null!, gradEnt = null!, gradV = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> oldLogp = null!, dOldValues = null!, dAdvantages = null!, dReturns = null!, respMask = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> passRef = null!, passLogp = null!;
    private MemoryBuffer1D<int, Stride1D.Dense> respTokens = null!, status = null!;
    private int capRows = -1, capN = -1;
    private float[] hostEntropy = [], hostGradEnt = [];
    private int[] hostStatus = [];

    /// <param name="device">Where the update runs.</param>
    /// <param name="policy">The host policy: its config, base weights and (when attached) adapter layout are copied.</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with this object.</param>
    /// <param name="reference">
    /// The frozen reference for <see cref="LogProbsAndValues"/> when the policy trains fully (a second copy on the
    /// device); null under LoRA, where the reference is the policy's base with the adapter off.
    /// </param>
    public DevicePolicyUpdate(KernelDevice device, TransformerModel policy, bool ownsDevice = false, TransformerModel? reference = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(policy);
        model = new DeviceTransformer(device, policy.Config, ownsDevice: ownsDevice);
        try
        {
            model.UploadParameters(policy.Parameters);
            if (policy.Adapter is { } a) model.AttachAdapter(a);
            if (reference != null && !ReferenceEquals(reference, policy))
            {
                if (reference.Config != policy.Config) throw new ArgumentException("the reference's configuration differs from the policy's.", nameof(reference));
                reference = reference.Adapter is null ? reference : throw new ArgumentException("the reference must not carry an adapter.", nameof(reference));
                this.reference = new DeviceTransformer(device, reference.Config);
                this.reference.UploadParameters(reference.Parameters);
            }

            acc = device.Accelerator;
            ppo = new DevicePpoKernels(device);
            dim = policy.Config.ModelDim;
            vocab = policy.Config.VocabSize;
            head = Allocate(dim + 1);
            headGrad = Allocate(dim + 1);
            headM = Allocate(dim + 1);
            headV = Allocate(dim + 1);
            long trainable = model.TrainableParameters.Length;
            trainM = Allocate(trainable);
            trainV = Allocate(trainable);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The policy on the device.</summary>
    public DeviceTransformer Model => model;

    /// <summary>Number of trained weights (adapter or full model), the length of the trained buffers below.</summary>
    public int TrainableLength => (int)model.TrainableParameters.Length;

    /// <summary>Copies the trained weights, the value head (weight then bias, d + 1) and both AdamW moment pairs in.</summary>
    public void UploadState(ReadOnlySpan<float> trainable, ReadOnlySpan<float> valueHead, ReadOnlySpan<float> trainableM, ReadOnlySpan<float> trainableV,
        ReadOnlySpan<float> valueHeadM, ReadOnlySpan<float> valueHeadV)
    {
        Up(model.TrainableParameters, trainable, nameof(trainable));
        Up(head.View, valueHead, nameof(valueHead));
        Up(trainM.View, trainableM, nameof(trainableM));
        Up(trainV.View, trainableV, nameof(trainableV));
        Up(headM.View, valueHeadM, nameof(valueHeadM));
        Up(headV.View, valueHeadV, nameof(valueHeadV));
    }

    /// <summary>Copies the state of <see cref="UploadState"/> back out (same buffers, same order).</summary>
    public void DownloadState(Span<float> trainable, Span<float> valueHead, Span<float> trainableM, Span<float> trainableV, Span<float> valueHeadM, Span<float> valueHeadV)
    {
        acc.Synchronize();
        Down(model.TrainableParameters, trainable, nameof(trainable));
        Down(head.View, valueHead, nameof(valueHead));
        Down(trainM.View, trainableM, nameof(trainableM));
        Down(trainV.View, trainableV, nameof(trainableV));
        Down(headM.View, valueHeadM, nameof(valueHeadM));
        Down(headV.View, valueHeadV, nameof(valueHeadV));
    }

    /// <summary>
    /// One PPO minibatch step. tokens, mask [k, seq] (prompt of <paramref name="promptLength"/> then the response);
    /// responseTokens, responseMask, oldLogProbs, oldValues, advantages, returns [k, r] with r = seq − promptLength;
    /// <paramref name="step"/> is the AdamW step (≥ 1). The response token j of row i is predicted at position
    /// i·seq + promptLength − 1 + j, as in <c>PpoTrainer</c>.
    /// </summary>
    public PolicyUpdateStats TrainMinibatch(
        ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<int> responseTokens, ReadOnlySpan<float> responseMask,
        ReadOnlySpan<float> oldLogProbs, ReadOnlySpan<float> oldValues, ReadOnlySpan<float> advantages, ReadOnlySpan<float> returns,
        int k, int seq, int promptLength, int step, in PolicyUpdateSettings o)
    {
        int kr = k * ResponseShape(responseTokens, k, seq, promptLength), n = k * seq;
        Check(responseMask.Length, kr, nameof(responseMask));
        Check(oldLogProbs.Length, kr, nameof(oldLogProbs));
        Check(oldValues.Length, kr, nameof(oldValues));
        Check(advantages.Length, kr, nameof(advantages));
        Check(returns.Length, kr, nameof(returns));
        Ensure(kr, n);
        Up(oldLogp.View.SubView(0, kr), oldLogProbs, nameof(oldLogProbs));
        Up(dOldValues.View.SubView(0, kr), oldValues, nameof(oldValues));
        Up(dAdvantages.View.SubView(0, kr), advantages, nameof(advantages));
        Up(dReturns.View.SubView(0, kr), returns, nameof(returns));
        return TrainCore(tokens, mask, responseTokens, responseMask, k, seq, promptLength, step, o);
    }

    /// <summary>
    /// The minibatch step once oldLogp, dOldValues, dAdvantages and dReturns hold the minibatch's [k, r] inputs on the
    /// device (uploaded by <see cref="TrainMinibatch"/>, gathered from the rollout by <see cref="TrainRolloutMinibatch"/>).
    /// </summary>
    private PolicyUpdateStats TrainCore(
        ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<int> responseTokens, ReadOnlySpan<float> responseMask,
        int k, int seq, int promptLength, int step, in PolicyUpdateSettings o)
    {
        int r = seq - promptLength, kr = k * r, p = promptLength;
        model.ZeroGradients();
        headGrad.MemSetToZero();
        model.Forward(tokens, mask, k, seq, computeLogits: false);
        model.HiddenGradient.MemSetToZero();

        // Token statistics over the response rows only: [k·r, V], never [k·seq, V].
        var lg = logits.View.SubView(0, (long)kr * vocab);
        Up(respTokens.View.SubView(0, kr), responseTokens, nameof(responseTokens));
        var tok = respTokens.View.SubView(0, kr);
        var lp = logp.View.SubView(0, kr);
        var ent = entropy.View.SubView(0, kr);
        var ls = lse.View.SubView(0, kr);
        var st = status.View.SubView(0, kr);
        model.ResponseTokenStatistics(k, seq, p, o.Temperature, lg, tok, lp, ent, ls, st);
        var vals = values.View.SubView(0, kr);
        ResponseValues(k, seq, p, vals);

        var m = respMask.View.SubView(0, kr);
        Up(m, responseMask, nameof(responseMask));
        acc.Synchronize();
        st.CopyToCPU(ref hostStatus[0], kr);
        VocabularyDeviceKernels.ThrowIfInvalid(hostStatus.AsSpan(0, kr));
        var gl = gradLogp.View.SubView(0, kr);
        var gv = gradV.View.SubView(0, kr);
        var pl = ppo.PolicyLoss(lp, oldLogp.View.SubView(0, kr), dAdvantages.View.SubView(0, kr), m, gl, k, r, o.ClipRange);
        var vl = ppo.ValueLoss(vals, dOldValues.View.SubView(0, kr), dReturns.View.SubView(0, kr), m, gv, k, r, o.ValueClipRange, o.ValueCoef);

        // Entropy bonus: its mean is a metric anyway, so the per-token entropy comes back and −c2/valid goes up.
        ent.CopyToCPU(ref hostEntropy[0], kr);
        double meanEntropy = EntropyBonus.Gradient(hostEntropy.AsSpan(0, kr), responseMask, pl.ValidCount, o.EntropyCoef, hostGradEnt.AsSpan(0, kr));

        // The ratio threshold as PpoTrainer.TrainMinibatch applies it: no backward (the gradients stay zeroed), AdamW still steps.
        bool skipped = pl.MeanRatio > o.RatioThreshold;
        if (!skipped) Backward(k, seq, p, o.Temperature, lg, tok, ls, ent, gl, gv);

        var optim = model.Optim;
        float norm = o.MaxGradNorm > 0
            ? optim.ClipByGlobalNorm(model.TrainableGradients, headGrad.View, o.MaxGradNorm)
            : optim.GlobalNorm(model.TrainableGradients, headGrad.View);
        optim.AdamWStep(model.TrainableParameters, model.TrainableGradients, trainM.View, trainV.View, step, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay);
        optim.AdamWStep(head.View, headGrad.View, headM.View, headV.View, step, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay);
        return new PolicyUpdateStats(skipped ? 0f : pl.Loss, skipped ? 0f : vl.Loss, meanEntropy, pl.ClipFraction, pl.ApproxKl, vl.ClipFraction, norm, skipped);
    }

    /// <summary>
    /// The backward of <see cref="TrainCore"/> from its gradients w.r.t. the log-probs (gl), the entropy (the host's
    /// hostGradEnt, uploaded here) and the values (gv): through the response logits and the value head into the trained
    /// weights' and the head's gradients.
    /// </summary>
    private void Backward(int k, int seq, int p, float temperature, ArrayView1D<float, Stride1D.Dense> lg, ArrayView1D<int, Stride1D.Dense> tok,
        ArrayView1D<float, Stride1D.Dense> ls, ArrayView1D<float, Stride1D.Dense> ent, ArrayView1D<float, Stride1D.Dense> gl, ArrayView1D<float, Stride1D.Dense> gv)
    {
        int r = seq - p, kr = k * r, n = k * seq;
        var gemm = model.Gemm;
        var ge = gradEnt.View.SubView(0, kr);
        Up(ge, hostGradEnt.AsSpan(0, kr), "gradEntropy");
        model.VocabularyKernels.TokenStatisticsBackward(lg, tok, vocab, temperature, ls, ent, gl, ge);
        model.AccumulateResponseLogitRowsGradient(k, seq, p, lg);

        // Value head backward: dHidden += dScores·w, dw += dScoresᵀ·hidden, db += Σ dScores.
        var ds = dScores.View.SubView(0, n);
        ds.MemSetToZero();
        for (int i = 0; i < k; i++) gv.SubView(i * r, r).CopyTo(ds.SubView(i * seq + p - 1, r));
        gemm.Multiply(ds, head.View.SubView(0, dim), model.HiddenGradient, n, dim, 1, accumulate: true);
        gemm.Multiply(ds, model.FinalHidden, headGrad.View.SubView(0, dim), 1, dim, n, transposeA: true, accumulate: true);
        model.LayerKernels.BiasBackward(ds, headGrad.View.SubView(dim, 1), n, 1);
        model.BackwardFromHiddenGradient();
    }

    /// <summary>
    /// The rollout's forward passes for k rows (as <c>PpoTrainer.ComputeLogProbsAndValues</c>): reference log-probs of
    /// the response tokens (the base with the adapter off under LoRA, else the reference copy), the policy's log-probs
    /// and its value head's values, each [k, r]. Masked positions are left as computed; callers zero them.
    /// </summary>
    public void LogProbsAndValues(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<int> responseTokens, int k, int seq, int promptLength,
        float temperature, Span<float> referenceLogProbs, Span<float> logProbs, Span<float> values)
    {
        int kr = k * ResponseShape(responseTokens, k, seq, promptLength), n = k * seq, p = promptLength;
        Check(referenceLogProbs.Length, kr, nameof(referenceLogProbs));
        Check(logProbs.Length, kr, nameof(logProbs));
        Check(values.Length, kr, nameof(values));
        if (reference is null && model.Adapter is null) throw new InvalidOperationException("full fine-tuning needs the reference model (pass it to the constructor).");
        Ensure(kr, n);
        var refOut = passRef.View.SubView(0, kr);
        var lpOut = passLogp.View.SubView(0, kr);
        var vals = this.values.View.SubView(0, kr);
        PassCore(tokens, mask, responseTokens, k, seq, p, temperature, refOut, lpOut, vals);
        acc.Synchronize();
        Down(refOut, referenceLogProbs, nameof(referenceLogProbs));
        Down(lpOut, logProbs, nameof(logProbs));
        Down(vals, values, nameof(values));
    }

    /// <summary>The passes of <see cref="LogProbsAndValues"/> into device views [k, r] (validated and sized by the caller).</summary>
    private void PassCore(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<int> responseTokens, int k, int seq, int p, float temperature,
        ArrayView<float> referenceLogProbs, ArrayView<float> logProbs, ArrayView<float> values)
    {
        int r = seq - p, kr = k * r, n = k * seq;
        Up(respTokens.View.SubView(0, kr), responseTokens, nameof(responseTokens));
        var refModel = reference ?? model;
        refModel.Forward(tokens, mask, k, seq, computeLogits: false, useAdapter: false);
        ResponseLogProbs(refModel, k, seq, p, temperature, referenceLogProbs);
        model.Forward(tokens, mask, k, seq, computeLogits: false, useAdapter: true);
        ResponseLogProbs(model, k, seq, p, temperature, logProbs);
        ResponseValues(k, seq, p, values);
    }

    /// <summary>The value head on every position of the last forward (as ScoreHead PerToken), then its [k, r] response positions.</summary>
    private void ResponseValues(int k, int seq, int p, ArrayView<float> destination)
    {
        int r = seq - p, n = k * seq;
        var all = valuesAll.View.SubView(0, n);
        model.Gemm.Multiply(model.FinalHidden, head.View.SubView(0, dim), all, n, 1, dim, transposeB: true);
        model.LayerKernels.AddBias(all, head.View.SubView(dim, 1), n, 1);
        for (int i = 0; i < k; i++) all.SubView(i * seq + p - 1, r).CopyTo(destination.SubView(i * r, r));
    }

    /// <summary>Log-probs of the response tokens (uploaded to respTokens) under the last forward of <paramref name="m"/>.</summary>
    private void ResponseLogProbs(DeviceTransformer m, int k, int seq, int p, float temperature, ArrayView<float> destination)
    {
        int r = seq - p, kr = k * r;
        var st = status.View.SubView(0, kr);
        var lp = logp.View.SubView(0, kr);
        m.ResponseTokenStatistics(k, seq, p, temperature, logits.View.SubView(0, (long)kr * vocab), respTokens.View.SubView(0, kr), lp,
            entropy.View.SubView(0, kr), lse.View.SubView(0, kr), st);
        acc.Synchronize();
        st.CopyToCPU(ref hostStatus[0], kr);
        VocabularyDeviceKernels.ThrowIfInvalid(hostStatus.AsSpan(0, kr));
        lp.CopyTo(destination);
    }

    public void Dispose()
    {
        acc?.Synchronize();
        foreach (var s in scratch) s.Dispose();
        scratch.Clear();
        DisposeRollout();
        ppo?.Dispose();
        reference?.Dispose();
        model.Dispose();
    }

    private void Ensure(int rows, int n)
    {
        if (rows > capRows)
        {
            logits = Allocate((long)rows * vocab);
            values = Allocate(rows); logp = Allocate(rows); entropy = Allocate(rows); lse = Allocate(rows);
            gradLogp = Allocate(rows); gradEnt = Allocate(rows); gradV = Allocate(rows);
            oldLogp = Allocate(rows); dOldValues = Allocate(rows); dAdvantages = Allocate(rows); dReturns = Allocate(rows); respMask = Allocate(rows);
            passRef = Allocate(rows); passLogp = Allocate(rows);
            respTokens = acc.Allocate1D<int>(rows);
            status = acc.Allocate1D<int>(rows);
            scratch.Add(respTokens);
            scratch.Add(status);
            hostEntropy = new float[rows];
            hostGradEnt = new float[rows];
            hostStatus = new int[rows];
            capRows = rows;
        }

        if (n > capN)
        {
            valuesAll = Allocate(n);
            dScores = Allocate(n);
            capN = n;
        }
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Allocate(long length)
    {
        var buffer = model.Accelerator.Allocate1D<float>(Math.Max(1, length));
        buffer.MemSetToZero();
        scratch.Add(buffer);
        return buffer;
    }

    /// <summary>Checks k &gt; 0, promptLength in [1, seq), responseTokens [k, r] inside the vocabulary; returns r = seq − promptLength.</summary>
    private int ResponseShape(ReadOnlySpan<int> responseTokens, int k, int seq, int promptLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (promptLength < 1 || promptLength >= seq) throw new ArgumentOutOfRangeException(nameof(promptLength), promptLength, $"must be in [1, {seq}).");
        int r = seq - promptLength;
        Check(responseTokens.Length, k * r, nameof(responseTokens));
        CheckTokens(responseTokens);
        return r;
    }

    private static void Check(int length, int expected, string name)
    {
        if (length != expected) throw new ArgumentException($"{name} has {length} elements, needs {expected}.", name);
    }

    private static void Up<T>(ArrayView<T> view, ReadOnlySpan<T> data, string name) where T : unmanaged
    {
        if (data.Length != view.Length) throw new ArgumentException($"{name} has {data.Length} elements, needs {view.Length}.", name);
        if (data.IsEmpty) return;
        view.CopyFromCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data), data.Length);
    }

    private static void Down(ArrayView<float> view, Span<float> data, string name)
    {
        if (data.Length != view.Length) throw new ArgumentException($"{name} has {data.Length} elements, needs {view.Length}.", name);
        if (data.IsEmpty) return;
        view.CopyToCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data), data.Length);
    }
}
