using ILGPU;
using ILGPU.Runtime;

namespace Rlhf.Compute;

/// <summary>What <see cref="DevicePolicyUpdate.RolloutAdvantages"/> measured: TRL's objective/kl (mean over rows of Σ_t k1) and
/// the explained variance 1 − Var(returns − values) / Var(returns) over the valid tokens (0 with fewer than 2 or no spread).</summary>
public readonly record struct RolloutAdvantageStats(double MeanKl, double ExplainedVariance);

/// <summary>
/// The rollout of one PPO iteration kept on the device: the old and reference log-probs and values of the rollout
/// pass, the per-token KL, rewards, GAE advantages (whitened) and returns, each [batch, r]. The trainer writes them with
/// <see cref="RolloutLogProbsAndValues"/>, turns them into advantages with <see cref="RolloutAdvantages"/> and trains on
/// minibatches of their rows with <see cref="TrainRolloutMinibatch"/>; only the scores go up and the metrics come back.
/// </summary>
public sealed partial class DevicePolicyUpdate
{
    private MemoryBuffer1D<float, Stride1D.Dense>? rOld, rRef, rValues, rMask, rKl, rRewards, rAdv, rRet, rDiff, rScores;
    private MemoryBuffer1D<int, Stride1D.Dense>? rRows;
    private int rolloutBatch, rolloutSteps, rolloutCapacity, rolloutBatchCapacity;

    /// <summary>Starts a rollout of <paramref name="batch"/> rows of <paramref name="responseLength"/> tokens (buffers reused when they fit).</summary>
    public void BeginRollout(int batch, int responseLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(responseLength);
        long n = (long)batch * responseLength;
        if (n > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch·responseLength = {n} exceeds int.MaxValue.");
        if (n > rolloutCapacity)
        {
            DisposePerTokenBuffers();
            rOld = Rollout(n); rRef = Rollout(n); rValues = Rollout(n); rMask = Rollout(n); rKl = Rollout(n);
            rRewards = Rollout(n); rAdv = Rollout(n); rRet = Rollout(n); rDiff = Rollout(n);
            rolloutCapacity = (int)n;
        }

        if (batch > rolloutBatchCapacity)
        {
            rScores?.Dispose();
            rRows?.Dispose();
            rScores = Rollout(batch);
            rRows = acc.Allocate1D<int>(batch);
            rolloutBatchCapacity = batch;
        }

        rolloutBatch = batch;
        rolloutSteps = responseLength;
    }

    /// <summary>
    /// <see cref="LogProbsAndValues"/> for rows [firstRow, firstRow + k) of the current rollout, kept on the device
    /// (seq − promptLength must be the rollout's response length).
    /// </summary>
    public void RolloutLogProbsAndValues(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<int> responseTokens, int firstRow, int k, int seq,
        int promptLength, float temperature)
    {
        int r = ResponseShape(responseTokens, k, seq, promptLength), kr = k * r;
        RequireRollout(r);
        if (firstRow < 0 || firstRow + k > rolloutBatch) throw new ArgumentOutOfRangeException(nameof(firstRow), firstRow, $"rows [{firstRow}, {firstRow + k}) are outside the rollout's [0, {rolloutBatch}).");
        Check(tokens.Length, k * seq, nameof(tokens));
        Check(mask.Length, k * seq, nameof(mask));
        if (reference is null && model.Adapter is null) throw new InvalidOperationException("full fine-tuning needs the reference model (pass it to the constructor).");
        Ensure(kr, k * seq);
        long o = (long)firstRow * r;
        PassCore(tokens, mask, responseTokens, k, seq, promptLength, temperature, rRef!.View.SubView(o, kr), rOld!.View.SubView(o, kr), rValues!.View.SubView(o, kr));
    }

    /// <summary>
    /// The rollout's advantages on the device, as <c>PpoTrainer.ComputeAdvantages</c>: per-token KL (k1, or k3 when
    /// <paramref name="k3"/>) of the old against the reference log-probs, rewards = −β·KL + the row's score at its
    /// last valid token, GAE (γ, λ), returns = advantages + values, then the advantages whitened over the valid tokens.
    /// responseMask [batch, r] and scores [batch] go up; the KL and explained-variance metrics come back.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 2 valid tokens (whitening needs a variance) or a NaN advantage.</exception>
    public RolloutAdvantageStats RolloutAdvantages(ReadOnlySpan<float> responseMask, ReadOnlySpan<float> scores, bool k3, float klCoef, float gamma, float lambda)
    {
        RequireRollout(rolloutSteps);
        int b = rolloutBatch, r = rolloutSteps, n = b * r;
        Check(responseMask.Length, n, nameof(responseMask));
        Check(scores.Length, b, nameof(scores));
        var mask = rMask!.View.SubView(0, n);
        var old = rOld!.View.SubView(0, n);
        var refLp = rRef!.View.SubView(0, n);
        var values = rValues!.View.SubView(0, n);
        var kl = rKl!.View.SubView(0, n);
        var rewards = rRewards!.View.SubView(0, n);
        var adv = rAdv!.View.SubView(0, n);
        var ret = rRet!.View.SubView(0, n);
        var diff = rDiff!.View.SubView(0, n);
        var sc = rScores!.View.SubView(0, b);
        Up(mask, responseMask, nameof(responseMask));
        Up(sc, scores, nameof(scores));
        ppo.Difference(old, refLp, diff);
        if (k3) ppo.K3(old, refLp, kl);
        else diff.CopyTo(kl);
        double sumKl = ppo.MaskedSum(diff, mask).Sum;
        ppo.Rewards(kl, sc, mask, rewards, b, r, klCoef);
        ppo.Gae(rewards, values, mask, adv, ret, b, r, gamma, lambda);
        ppo.Whiten(adv, mask, adv);

        // Explained variance of the values (a metric only): masked moments of the returns and of returns − values
        // (whitening above has already required 2 valid tokens).
        double explained = 0;
        var vr = ppo.Moments(ret, mask);
        if (vr.Variance != 0)
        {
            ppo.Difference(ret, values, diff);
            explained = 1.0 - ppo.Moments(diff, mask).Variance / vr.Variance;
        }

        return new RolloutAdvantageStats(sumKl / b, explained);
    }

    /// <summary>
    /// Copies the current rollout's device arrays out, each [batch, r] (any may be empty to skip it): old and
    /// reference log-probs and values as computed (masked positions not zeroed), advantages and returns as
    /// <see cref="RolloutAdvantages"/> left them.
    /// </summary>
    public void DownloadRollout(Span<float> oldLogProbs, Span<float> referenceLogProbs, Span<float> values, Span<float> advantages, Span<float> returns)
    {
        RequireRollout(rolloutSteps);
        int n = rolloutBatch * rolloutSteps;
        acc.Synchronize();
        if (!oldLogProbs.IsEmpty) Down(rOld!.View.SubView(0, n), oldLogProbs, nameof(oldLogProbs));
        if (!referenceLogProbs.IsEmpty) Down(rRef!.View.SubView(0, n), referenceLogProbs, nameof(referenceLogProbs));
        if (!values.IsEmpty) Down(rValues!.View.SubView(0, n), values, nameof(values));
        if (!advantages.IsEmpty) Down(rAdv!.View.SubView(0, n), advantages, nameof(advantages));
        if (!returns.IsEmpty) Down(rRet!.View.SubView(0, n), returns, nameof(returns));
    }

    /// <summary>
    /// <see cref="TrainMinibatch"/> on rows <paramref name="rows"/> of the current rollout: tokens, mask [k, seq] and
    /// responseTokens, responseMask [k, r] are those rows' host data; their old log-probs, old values, advantages and
    /// returns are gathered from the device rollout.
    /// </summary>
    public PolicyUpdateStats TrainRolloutMinibatch(
        ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<int> responseTokens, ReadOnlySpan<float> responseMask,
        ReadOnlySpan<int> rows, int seq, int promptLength, int step, in PolicyUpdateSettings o)
    {
        int k = rows.Length;
        ArgumentOutOfRangeException.ThrowIfZero(k, nameof(rows));
        int r = ResponseShape(responseTokens, k, seq, promptLength), kr = k * r;
        RequireRollout(r);
        Check(responseMask.Length, kr, nameof(responseMask));
        for (int i = 0; i < k; i++)
        {
            if ((uint)rows[i] >= (uint)rolloutBatch) throw new ArgumentOutOfRangeException(nameof(rows), rows[i], $"row index {rows[i]} at {i} is outside [0, {rolloutBatch}).");
        }

        Ensure(kr, k * seq);
        var idx = rRows!.View.SubView(0, k);
        Up(idx, rows, nameof(rows));
        int n = rolloutBatch * r;
        ppo.GatherRows(rOld!.View.SubView(0, n), idx, oldLogp.View.SubView(0, kr), r);
        ppo.GatherRows(rValues!.View.SubView(0, n), idx, dOldValues.View.SubView(0, kr), r);
        ppo.GatherRows(rAdv!.View.SubView(0, n), idx, dAdvantages.View.SubView(0, kr), r);
        ppo.GatherRows(rRet!.View.SubView(0, n), idx, dReturns.View.SubView(0, kr), r);
        return TrainCore(tokens, mask, responseTokens, responseMask, k, seq, promptLength, step, o);
    }

    private void RequireRollout(int responseLength)
    {
        if (rolloutBatch == 0) throw new InvalidOperationException("no rollout on the device: call BeginRollout first.");
        if (responseLength != rolloutSteps) throw new ArgumentException($"the response length is {responseLength} but the rollout's is {rolloutSteps}.", nameof(responseLength));
    }

    private void CheckTokens(ReadOnlySpan<int> responseTokens)
    {
        for (int i = 0; i < responseTokens.Length; i++)
        {
            if ((uint)responseTokens[i] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(responseTokens), responseTokens[i], $"token at index {i} is outside [0, {vocab}).");
        }
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Rollout(long length)
    {
        var buffer = acc.Allocate1D<float>(length);
        buffer.MemSetToZero();
        return buffer;
    }

    private void DisposePerTokenBuffers()
    {
        foreach (var b in new[] { rOld, rRef, rValues, rMask, rKl, rRewards, rAdv, rRet, rDiff }) b?.Dispose();
        rOld = rRef = rValues = rMask = rKl = rRewards = rAdv = rRet = rDiff = null;
        rolloutCapacity = 0;
    }

    private void DisposeRollout()
    {
        DisposePerTokenBuffers();
        rScores?.Dispose();
        rRows?.Dispose();
        rScores = null;
        rRows = null;
        rolloutBatchCapacity = 0;
        rolloutBatch = rolloutSteps = 0;
    }
}
