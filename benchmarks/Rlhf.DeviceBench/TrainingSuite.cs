using System.Globalization;
using Rlhf.Compute;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.DeviceBench;

/// <summary>
/// The training steps that `--device cuda` runs, against the CPU path: an SFT step (two micro-batches with a loss mask,
/// clipping, AdamW; full and LoRA) through <see cref="ICausalLmBackend"/>, and one PPO minibatch update
/// (<see cref="DevicePolicyUpdate"/>) against <see cref="CpuPolicyUpdate"/>; then both timed (GPT-2 124M at full scale).
/// </summary>
internal static class TrainingSuite
{
    public static void Run(KernelDevice device, BenchScale scale, DeviceReport report)
    {
        var small = TransformerConfig.Gpt2(vocabSize: 97, contextLength: 32, modelDim: 32, layerCount: 2, headCount: 4);
        SftParity(device, report, small, loraRank: 0);
        SftParity(device, report, small, loraRank: 4);
        PpoParity(device, report, small, loraRank: 4);
        PpoParity(device, report, small, loraRank: 0);
        PpoRolloutParity(device, report, small);
        bool full = scale == BenchScale.Full;
        var config = full
            ? TransformerConfig.Gpt2(vocabSize: 50257, contextLength: 1024, modelDim: 768, layerCount: 12, headCount: 12)
            : TransformerConfig.Gpt2(vocabSize: 101, contextLength: 16, modelDim: 32, layerCount: 2, headCount: 2);
        PpoTiming(device, report, config, full ? 8 : 2, full ? 256 : 12, full ? 128 : 6, full ? "GPT-2 124M" : "GPT-2 tiny");
    }

    private static void SftParity(KernelDevice device, DeviceReport report, TransformerConfig config, int loraRank)
    {
        var init = new TransformerModel(config);
        init.InitializeRandom(5, std: 0.2f);
        LoraAdapter? lora = null;
        if (loraRank > 0)
        {
            lora = init.AttachAdapter(LoraConfig.Default(config.Family, loraRank), 3);
            DeviceArrays.Random(lora.Parameters.Length, 4, 0.2f).CopyTo(lora.Parameters, 0);
        }

        var cpuModel = new TransformerModel(config);
        init.Parameters.CopyTo(cpuModel.Parameters, 0);
        using var cpu = new CpuCausalLm(cpuModel);
        using var dev = new DeviceTransformer(device, config);
        dev.UploadParameters(init.Parameters);
        if (lora != null)
        {
            cpu.AttachAdapter(lora);
            dev.AttachAdapter(lora);
        }

        const int batch = 2, seq = 12;
        var micro = new[] { Batch(batch, seq, config.VocabSize, 1), Batch(batch, seq, config.VocabSize, 2) };
        double lossErr = 0, normErr = 0, gradErr = 0;
        var firstGradients = new float[2][];
        for (int step = 1; step <= 2; step++)
        {
            var losses = new double[2];
            var norms = new double[2];
            int i = 0;
            foreach (ICausalLmBackend b in new ICausalLmBackend[] { cpu, dev })
            {
                b.ZeroGradients();
                foreach (var (tokens, mask, targets, weights) in micro)
                {
                    b.Forward(tokens, mask, batch, seq);
                    losses[i] += 0.5 * b.CrossEntropy(targets, weights, 0.5f);
                    b.Backward();
                }

                if (step == 1 && lora is null)
                {
                    firstGradients[i] = new float[init.Parameters.Length];
                    b.DownloadGradients(firstGradients[i]);
                    if (i == 1) gradErr = Errors.MaxScaled(firstGradients[1], firstGradients[0]);
                }

                norms[i] = b.ClipGradients(0.5f);
                b.AdamWStep(step, 1e-2, weightDecay: 0.01);
                i++;
            }

            lossErr = Math.Max(lossErr, Math.Abs(losses[1] - losses[0]) / Math.Abs(losses[0]));
            normErr = Math.Max(normErr, Math.Abs(norms[1] - norms[0]) / Math.Abs(norms[0]));
        }

        string name = lora is null ? "SFT step (full)" : $"SFT step (LoRA r{loraRank})";
        report.AddParity($"{name}: loss, 2 steps", lossErr, 1e-4);
        report.AddParity($"{name}: gradient norm, 2 steps", normErr, 1e-4);
        if (lora is null)
        {
            report.AddParity($"{name}: every gradient of step 1", gradErr, 1e-4);
        }
        else
        {
            var a = new float[lora.Parameters.Length];
            var e = new float[lora.Parameters.Length];
            dev.DownloadAdapter(a);
            cpu.DownloadAdapter(e);
            report.AddParity($"{name}: adapter after 2 AdamW steps", Errors.MaxScaled(a, e), 1e-4);
        }
    }

    private static void PpoParity(KernelDevice device, DeviceReport report, TransformerConfig config, int loraRank)
    {
        var policy = new TransformerModel(config);
        policy.InitializeRandom(7, std: 0.2f);
        if (loraRank > 0) DeviceArrays.Random(policy.AttachAdapter(LoraConfig.Default(config.Family, loraRank), 1).Parameters.Length, 8, 0.2f).CopyTo(policy.Adapter!.Parameters, 0);
        const int k = 2, seq = 12, p = 5;
        var mb = PpoBatch.Create(k, seq, p, config.VocabSize, 11);
        var cpu = new CpuPolicyUpdate(policy, config.ModelDim);
        using var dev = new DevicePolicyUpdate(device, policy);
        dev.UploadState(cpu.Trainable, cpu.Head, cpu.TrainM, cpu.TrainV, cpu.HeadM, cpu.HeadV);
        var settings = new PolicyUpdateSettings(0.9f, 0.2f, 0.2f, 0.5f, 0.01f, 0.5f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0f);
        string name = loraRank > 0 ? $"PPO update (LoRA r{loraRank})" : "PPO update (full)";
        if (loraRank > 0)
        {
            var (refLp, lp, values) = cpu.LogProbsAndValues(mb, settings.Temperature);
            float[] dRef = new float[refLp.Length], dLp = new float[lp.Length], dValues = new float[values.Length];
            dev.LogProbsAndValues(mb.Tokens, mb.Mask, mb.ResponseTokens, k, seq, p, settings.Temperature, dRef, dLp, dValues);
            report.AddParity("PPO rollout pass (LoRA): reference and policy log-probs, values",
                Math.Max(Errors.MaxScaled(dRef, refLp), Math.Max(Errors.MaxScaled(dLp, lp), Errors.MaxScaled(dValues, values))), 1e-4);
        }

        double worst = 0;
        for (int step = 1; step <= 2; step++)
        {
            var c = cpu.TrainMinibatch(mb, step, settings);
            var d = dev.TrainMinibatch(mb.Tokens, mb.Mask, mb.ResponseTokens, mb.ResponseMask, mb.OldLogProbs, mb.OldValues, mb.Advantages, mb.Returns, k, seq, p, step, settings);
            worst = Math.Max(worst, Rel(d.PolicyLoss, c.PolicyLoss));
            worst = Math.Max(worst, Rel(d.ValueLoss, c.ValueLoss));
            worst = Math.Max(worst, Rel(d.Entropy, c.Entropy));
            worst = Math.Max(worst, Rel(d.GradNorm, c.GradNorm));
        }

        report.AddParity($"{name}: losses, entropy, gradient norm, 2 minibatches", worst, 1e-4);
        var t = new float[cpu.Trainable.Length];
        var h = new float[cpu.Head.Length];
        var scratch = new float[cpu.Trainable.Length];
        var hs = new float[cpu.Head.Length];
        dev.DownloadState(t, h, scratch, new float[t.Length], hs, new float[h.Length]);
        report.AddParity($"{name}: value head after 2 AdamW steps", Errors.MaxScaled(h, cpu.Head), 1e-4);
        if (loraRank > 0) report.AddParity($"{name}: adapter after 2 AdamW steps", Errors.MaxScaled(t, cpu.Trainable), 1e-4);
        else report.AddParity($"{name}: first moments of every weight after 2 steps", Errors.MaxScaled(scratch, cpu.TrainM), 1e-4);
    }

    /// <summary>
    /// The PPO iteration's device-resident rollout (what `ppo --device cuda` runs between sampling and the update): the
    /// rollout pass into device buffers, k3 KL-penalised rewards, GAE and whitened advantages there, then a minibatch
    /// whose rows are gathered on the device, against the CPU kernels on the host copies.
    /// </summary>
    private static void PpoRolloutParity(KernelDevice device, DeviceReport report, TransformerConfig config)
    {
        var policy = new TransformerModel(config);
        policy.InitializeRandom(9, std: 0.2f);
        DeviceArrays.Random(policy.AttachAdapter(LoraConfig.Default(config.Family, 4), 1).Parameters.Length, 10, 0.2f).CopyTo(policy.Adapter!.Parameters, 0);
        const int b = 4, seq = 12, p = 5, r = seq - p, n = b * r;
        var rollout = PpoBatch.Create(b, seq, p, config.VocabSize, 21);
        var cpu = new CpuPolicyUpdate(policy, config.ModelDim);
        using var dev = new DevicePolicyUpdate(device, policy);
        dev.UploadState(cpu.Trainable, cpu.Head, cpu.TrainM, cpu.TrainV, cpu.HeadM, cpu.HeadV);
        var settings = new PolicyUpdateSettings(0.9f, 0.2f, 0.2f, 0.5f, 0.01f, 0.5f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0f);
        const float klCoef = 0.2f, gamma = 0.99f, lambda = 0.95f;
        var scores = DeviceArrays.Random(b, 22, 2f);

        // Host: the rollout pass, then the CPU kernels as PpoTrainer.ComputeAdvantages runs them.
        var (refLp, lp, values) = cpu.LogProbsAndValues(rollout, settings.Temperature);
        var mask = rollout.ResponseMask;
        var kl = new float[n];
        var rewards = new float[n];
        var adv = new float[n];
        var ret = new float[n];
        Rlhf.Kernels.Vocabulary.KullbackLeibler.K3(lp, refLp, kl);
        Rlhf.Kernels.Ppo.PpoRewards.Compute(kl, scores, mask, rewards, b, r, klCoef);
        Rlhf.Kernels.Ppo.Gae.Compute(rewards, values, mask, adv, ret, b, r, gamma, lambda);
        Rlhf.Kernels.Ppo.MaskedWhitening.Whiten(adv, mask, adv);
        double meanKl = 0;
        for (int i = 0; i < n; i++) meanKl += mask[i] != 0f ? lp[i] - refLp[i] : 0f;
        meanKl /= b;

        dev.BeginRollout(b, r);
        for (int start = 0; start < b; start += 2)
        {
            dev.RolloutLogProbsAndValues(rollout.Tokens.AsSpan(start * seq, 2 * seq), rollout.Mask.AsSpan(start * seq, 2 * seq),
                rollout.ResponseTokens.AsSpan(start * r, 2 * r), start, 2, seq, p, settings.Temperature);
        }

        var stats = dev.RolloutAdvantages(mask, scores, k3: true, klCoef, gamma, lambda);
        float[] dAdv = new float[n], dRet = new float[n];
        dev.DownloadRollout(default, default, default, dAdv, dRet);
        report.AddParity($"PPO rollout on the device (LoRA): k3 rewards, GAE, whitened advantages, returns, mean KL [{b}x{r}]",
            Math.Max(Math.Max(Errors.MaxScaled(dAdv, adv), Errors.MaxScaled(dRet, ret)), Rel(stats.MeanKl, meanKl)), 1e-4);

        int[] rows = [3, 1];
        var mb = new PpoBatch(2, seq, p, Rows(rollout.Tokens, rows, seq), Rows(rollout.Mask, rows, seq), Rows(rollout.ResponseTokens, rows, r), Rows(mask, rows, r),
            Rows(lp, rows, r), Rows(values, rows, r), Rows(adv, rows, r), Rows(ret, rows, r));
        var c = cpu.TrainMinibatch(mb, 1, settings);
        var d = dev.TrainRolloutMinibatch(mb.Tokens, mb.Mask, mb.ResponseTokens, mb.ResponseMask, rows, seq, p, 1, settings);
        double worst = Math.Max(Math.Max(Rel(d.PolicyLoss, c.PolicyLoss), Rel(d.ValueLoss, c.ValueLoss)), Math.Max(Rel(d.Entropy, c.Entropy), Rel(d.GradNorm, c.GradNorm)));
        report.AddParity("PPO update from the device rollout (rows gathered there): losses, entropy, gradient norm", worst, 1e-4);
    }

    private static T[] Rows<T>(T[] source, int[] rows, int length)
    {
        var result = new T[rows.Length * length];
        for (int i = 0; i < rows.Length; i++) Array.Copy(source, rows[i] * length, result, i * length, length);
        return result;
    }

    private static void PpoTiming(KernelDevice device, DeviceReport report, TransformerConfig config, int k, int seq, int promptLength, string name)
    {
        var policy = new TransformerModel(config);
        policy.InitializeRandom(1);
        policy.AttachAdapter(LoraConfig.Default(config.Family, 8), 2);
        var mb = PpoBatch.Create(k, seq, promptLength, config.VocabSize, 3);
        using var dev = new DevicePolicyUpdate(device, policy);
        var settings = new PolicyUpdateSettings(1f, 0.2f, 0.2f, 0.1f, 0.01f, 1f, 1e-5f, 0.9f, 0.999f, 1e-8f, 0f);
        int step = 0;
        double ms = Stopwatches.MedianMilliseconds(device.Accelerator, () =>
            dev.TrainMinibatch(mb.Tokens, mb.Mask, mb.ResponseTokens, mb.ResponseMask, mb.OldLogProbs, mb.OldValues, mb.Advantages, mb.Returns, k, seq, promptLength, ++step, settings),
            warmups: 1, minSeconds: 1, maxRuns: 10);
        string note = string.Create(CultureInfo.InvariantCulture, $"LoRA r8 on c_attn, minibatch {k}x{seq} (response {seq - promptLength}), {k * seq / (ms * 1e-3):F0} tokens/s");
        report.AddTiming($"{name} PPO minibatch update (fwd+stats+losses+bwd+clip+AdamW)", ms, 0, note);
    }

    private static (int[] Tokens, float[] Mask, int[] Targets, float[] Weights) Batch(int batch, int seq, int vocab, int seed)
    {
        int n = batch * seq;
        var rng = new Random(seed);
        var tokens = new int[n];
        var mask = new float[n];
        var lossMask = new float[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = rng.Next(vocab);
            mask[i] = i / seq == 0 && i % seq < 2 ? 0f : 1f; // row 0 left-padded
            lossMask[i] = i % seq >= seq / 2 ? 1f : 0f;     // loss on the second half ("responses")
        }

        var targets = new int[n];
        var weights = new float[n];
        CausalLmLoss.ShiftTargets(tokens, mask, lossMask, targets, weights, batch, seq);
        return (tokens, mask, targets, weights);
    }

    private static double Rel(double actual, double expected) => Math.Abs(actual - expected) / (Math.Abs(expected) + 1e-6);
}
