using Rlhf.Compute;
using Rlhf.Kernels.Optim;
using Rlhf.Kernels.Ppo;
using Rlhf.Kernels.Vocabulary;
using Rlhf.Model;

namespace Rlhf.DeviceBench;

/// <summary>A PPO minibatch (the inputs of <see cref="DevicePolicyUpdate.TrainMinibatch"/>), seeded.</summary>
internal sealed record PpoBatch(int K, int Seq, int PromptLength, int[] Tokens, float[] Mask, int[] ResponseTokens, float[] ResponseMask,
    float[] OldLogProbs, float[] OldValues, float[] Advantages, float[] Returns)
{
    public static PpoBatch Create(int k, int seq, int promptLength, int vocab, int seed)
    {
        var rng = new Random(seed);
        int r = seq - promptLength;
        var tokens = new int[k * seq];
        var mask = new float[k * seq];
        var respTokens = new int[k * r];
        var respMask = DeviceArrays.Mask(k, r);
        for (int i = 0; i < k; i++)
        {
            for (int t = 0; t < seq; t++)
            {
                tokens[i * seq + t] = rng.Next(vocab);
                // Row 1 left-padded by one; response tokens past a row's end are padding.
                mask[i * seq + t] = (i == 1 && t == 0) || (t >= promptLength && respMask[i * r + t - promptLength] == 0f) ? 0f : 1f;
            }

            for (int j = 0; j < r; j++) respTokens[i * r + j] = tokens[i * seq + promptLength + j];
        }

        return new PpoBatch(k, seq, promptLength, tokens, mask, respTokens, respMask,
            DeviceArrays.Random(k * r, seed + 1, 1f, -5f), DeviceArrays.Random(k * r, seed + 2, 0.5f), DeviceArrays.Random(k * r, seed + 3, 1f), DeviceArrays.Random(k * r, seed + 4, 1f));
    }
}

/// <summary>
/// The CPU reference of one PPO minibatch update, the same steps as <c>Rlhf.Ppo.PpoTrainer.TrainMinibatch</c> (which
/// the test suite compares with the device directly; the runner cannot load the PPO stage): policy forward, response
/// logits, token statistics, policy + value + entropy losses, backward through logits and the value head, one shared
/// clip, AdamW on the trained weights and the head.
/// </summary>
internal sealed class CpuPolicyUpdate
{
    private readonly TransformerModel policy;
    private readonly ScoreHead head;

    public CpuPolicyUpdate(TransformerModel source, int dim)
    {
        policy = new TransformerModel(source.Config);
        source.Parameters.CopyTo(policy.Parameters, 0);
        if (source.Adapter is { } a) a.Parameters.CopyTo(policy.AttachAdapter(a.Config, 0).Parameters, 0);
        head = ScoreHead.Value(dim);
        head.InitializeRandom(9);
        Trainable = policy.Adapter?.Parameters ?? policy.Parameters;
        TrainM = new float[Trainable.Length];
        TrainV = new float[Trainable.Length];
        HeadM = new float[head.Parameters.Length];
        HeadV = new float[head.Parameters.Length];
    }

    public float[] Trainable { get; }

    public float[] Head => head.Parameters;

    public float[] TrainM { get; }

    public float[] TrainV { get; }

    public float[] HeadM { get; }

    public float[] HeadV { get; }

    /// <summary>Reference (adapter off) and policy log-probs of the response tokens and the policy's values, each [k, r].</summary>
    public (float[] Reference, float[] Policy, float[] Values) LogProbsAndValues(PpoBatch b, float temperature)
    {
        int k = b.K, s = b.Seq, p = b.PromptLength, r = s - p, v = policy.Config.VocabSize;
        var chunk = new float[r * v];
        var lse = new float[r];
        var result = (new float[k * r], new float[k * r], new float[k * r]);
        foreach (bool useAdapter in new[] { false, true })
        {
            policy.Forward(b.Tokens, b.Mask, k, s, computeLogits: false, useAdapter: useAdapter);
            var destination = useAdapter ? result.Item2 : result.Item1;
            for (int i = 0; i < k; i++)
            {
                policy.ComputeLogits(i * s + p - 1, r, chunk);
                TokenStatistics.LogProbs(chunk, b.ResponseTokens.AsSpan(i * r, r), v, temperature, destination.AsSpan(i * r, r), lse);
            }
        }

        var all = new float[k * s];
        head.Forward(policy.FinalHidden, b.Mask, k, s, all);
        for (int i = 0; i < k; i++) all.AsSpan(i * s + p - 1, r).CopyTo(result.Item3.AsSpan(i * r, r));
        return result;
    }

    public PolicyUpdateStats TrainMinibatch(PpoBatch b, int step, PolicyUpdateSettings o)
    {
        int k = b.K, s = b.Seq, p = b.PromptLength, r = s - p, kr = k * r, v = policy.Config.VocabSize, d = policy.Config.ModelDim;
        var grad = policy.Adapter?.Gradients ?? policy.Gradients;
        Array.Clear(grad);
        Array.Clear(head.Gradients);
        policy.Forward(b.Tokens, b.Mask, k, s, computeLogits: false, useAdapter: true);
        var chunk = new float[r * v];
        float[] logp = new float[kr], ent = new float[kr], lse = new float[kr], gl = new float[kr], gv = new float[kr], ge = new float[kr], values = new float[kr];
        for (int i = 0; i < k; i++)
        {
            policy.ComputeLogits(i * s + p - 1, r, chunk);
            TokenStatistics.Compute(chunk, b.ResponseTokens.AsSpan(i * r, r), v, o.Temperature, logp.AsSpan(i * r, r), ent.AsSpan(i * r, r), lse.AsSpan(i * r, r));
        }

        var all = new float[k * s];
        head.Forward(policy.FinalHidden, b.Mask, k, s, all);
        for (int i = 0; i < k; i++) all.AsSpan(i * s + p - 1, r).CopyTo(values.AsSpan(i * r, r));
        var pl = PolicyLoss.Compute(logp, b.OldLogProbs, b.Advantages, b.ResponseMask, gl, k, r, o.ClipRange);
        var vl = ValueLoss.Compute(values, b.OldValues, b.Returns, b.ResponseMask, gv, k, r, o.ValueClipRange, o.ValueCoef);
        double entSum = 0;
        float entScale = pl.ValidCount > 0 ? -o.EntropyCoef / pl.ValidCount : 0f;
        for (int i = 0; i < kr; i++)
        {
            bool on = b.ResponseMask[i] != 0f;
            if (on) entSum += ent[i];
            ge[i] = on ? entScale : 0f;
        }

        for (int i = 0; i < k; i++)
        {
            policy.ComputeLogits(i * s + p - 1, r, chunk);
            TokenStatistics.Backward(chunk, b.ResponseTokens.AsSpan(i * r, r), v, o.Temperature, lse.AsSpan(i * r, r), ent.AsSpan(i * r, r), gl.AsSpan(i * r, r), ge.AsSpan(i * r, r));
            policy.AccumulateLogitsGradient(i * s + p - 1, r, chunk);
        }

        var dScores = new float[k * s];
        for (int i = 0; i < k; i++) gv.AsSpan(i * r, r).CopyTo(dScores.AsSpan(i * s + p - 1, r));
        var dHidden = new float[k * s * d];
        head.Backward(dScores, policy.FinalHidden, b.Mask, k, s, dHidden);
        policy.Backward(default, dHidden);
        ReadOnlySpan<Memory<float>> grads = [grad, head.Gradients];
        float norm = o.MaxGradNorm > 0 ? GradientClipping.ClipByGlobalNorm(grads, o.MaxGradNorm) : GradientClipping.GlobalNorm(grads);
        AdamW.Step(Trainable, grad, TrainM, TrainV, step, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay);
        AdamW.Step(head.Parameters, head.Gradients, HeadM, HeadV, step, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay);
        return new PolicyUpdateStats(pl.Loss, vl.Loss, pl.ValidCount > 0 ? entSum / pl.ValidCount : 0, pl.ClipFraction, pl.ApproxKl, vl.ClipFraction, norm);
    }
}
