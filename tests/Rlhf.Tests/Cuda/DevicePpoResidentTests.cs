using Rlhf.Compute;
using Rlhf.Formats;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Ppo;
using Rlhf.Ppo;
using Rlhf.Tests.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// PPO with its state and rollout resident on a device (ILGPU's CPU accelerator) against the CPU trainer: iterations
/// without copying the state back, the rollout's KL-penalised rewards, GAE and whitened advantages computed there,
/// and checkpoints that hold the device's current weights. 1e-4 relative.
/// </summary>
[NonParallelizable]
public class DevicePpoResidentTests
{
    private static PpoOptions Options(string device, KlEstimator kl = KlEstimator.K1) => new()
    {
        BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 4, LearningRate = 2e-2f, LoraRank = 4, Seed = 5,
        InitialKlCoef = 0.2f, MaxGradNorm = 0.5f, EntropyCoef = 0.05f, ValueCoef = 0.5f, ClipRange = 0.1f, ValueClipRange = 0.1f,
        WeightDecay = 0.01f, Temperature = 0.9f, MaxSteps = 3, Device = device, KlEstimator = kl, Gamma = 0.95f, Lambda = 0.9f,
    };

    private static PpoTrainer Trainer(string device, KlEstimator kl = KlEstimator.K1) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, Options(device, kl));

    [Test]
    public void IterationsKeepTheStateOnTheDeviceAndMatchTheCpu()
    {
        using var cpu = Trainer("cpu");
        using var dev = Trainer(CausalLmBackends.IlgpuCpu);
        string dir = Directory.CreateTempSubdirectory("ppo-resident-").FullName;
        try
        {
            for (int it = 1; it <= 2; it++)
            {
                var c = cpu.Step();
                var d = dev.Step();
                AssertSameMetrics(d, c, $"iteration {it}");
            }

            Assert.That(dev.StateDownloads, Is.EqualTo(0), "two iterations without copying the state back to the host");
            Assert.That(cpu.Kl.Value, Is.EqualTo(dev.Kl.Value).Within(1e-4 * cpu.Kl.Value));

            // A checkpoint mid-run holds the device's current weights (copied back once, then training continues there).
            dev.SaveCheckpoint(dir);
            Assert.That(dev.StateDownloads, Is.EqualTo(1));
            var saved = Safetensors.Read(Path.Combine(dir, PpoTrainer.TensorsFileName));
            var want = cpu.TrainableParameters.ToArray();
            DeviceTestBase.AssertCloseTo(saved.Get("policy.trainable", [want.Length]), want, 1e-4, "checkpointed adapter");
            DeviceTestBase.AssertCloseTo(saved.Get("value_head", [cpu.ValueHead.Parameters.Length]), cpu.ValueHead.Parameters, 1e-4, "checkpointed value head");

            var c3 = cpu.Step();
            var d3 = dev.Step();
            AssertSameMetrics(d3, c3, "iteration 3 (after the checkpoint)");
            Assert.That(dev.StateDownloads, Is.EqualTo(1), "saving did not take the state off the device");
            DeviceTestBase.AssertCloseTo(dev.TrainableParameters, cpu.TrainableParameters, 1e-4, "adapter after 3 iterations");
            DeviceTestBase.AssertCloseTo(dev.ValueHead.Parameters, cpu.ValueHead.Parameters, 1e-4, "value head after 3 iterations");
            Assert.That(dev.StateDownloads, Is.EqualTo(2), "reading the weights from outside copies them back once");
            _ = dev.Policy;
            Assert.That(dev.StateDownloads, Is.EqualTo(2), "and not again while they are current");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void FullFineTuningIterationsOnTheDeviceMatchTheCpu()
    {
        // Full fine-tuning at a smaller rate (see DevicePpoUpdateTests): the reference is a frozen copy on the device.
        var options = Options("cpu") with { LoraRank = 0, LearningRate = 2e-3f };
        using var cpu = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, options);
        using var dev = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts,
            options with { Device = CausalLmBackends.IlgpuCpu });
        for (int it = 1; it <= 2; it++) AssertSameMetrics(dev.Step(), cpu.Step(), $"iteration {it}");
        Assert.That(dev.StateDownloads, Is.EqualTo(0));
        DeviceTrainingTests.AssertCloseBesidesKeyBias(dev.TrainableParameters.ToArray(), cpu.TrainableParameters.ToArray(), cpu.Policy.Layout, "policy weights after 2 iterations");
    }

    [Test]
    public void ResumingFromACheckpointOnTheDeviceContinuesAsTheCpu()
    {
        string dir = Directory.CreateTempSubdirectory("ppo-resident-").FullName;
        try
        {
            using var cpu = Trainer("cpu");
            cpu.Step();
            cpu.SaveCheckpoint(dir);
            var c = cpu.Step();
            using var dev = Trainer(CausalLmBackends.IlgpuCpu);
            dev.Step(); // state on the device, then replaced by the checkpoint's
            dev.LoadCheckpoint(dir);
            var d = dev.Step();
            AssertSameMetrics(d, c, "iteration 2 after resume");
            DeviceTestBase.AssertCloseTo(dev.TrainableParameters, cpu.TrainableParameters, 1e-4, "adapter after resume + 1 iteration");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void DisposeCopiesTheTrainedStateBackToThePolicy()
    {
        using var cpu = Trainer("cpu");
        var policy = PpoTestSupport.TinyByteModel();
        var dev = new PpoTrainer(policy, new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, Options(CausalLmBackends.IlgpuCpu));
        cpu.Step();
        dev.Step();
        Assert.That(dev.StateDownloads, Is.EqualTo(0));
        dev.Dispose();
        DeviceTestBase.AssertCloseTo(policy.Adapter!.Parameters, cpu.TrainableParameters, 1e-4, "the caller's policy after Dispose");
    }

    [TestCase(KlEstimator.K1)]
    [TestCase(KlEstimator.K3)]
    public void RolloutAdvantagesOnTheDeviceMatchTheHostComputation(KlEstimator kl)
    {
        using var cpu = Trainer("cpu", kl);
        var rollout = cpu.Generate();
        int r = rollout.ResponseLength, s = rollout.SequenceLength, b = rollout.Batch;
        // Rows 1 and 2 end early so masked tokens are inside the scans.
        foreach (int row in new[] { 1, 2 })
        {
            rollout.ResponseMask[row * r + r - 1] = 0f;
            rollout.Mask[row * s + s - 1] = 0f;
        }

        rollout.ResponseMask[2 * r + r - 2] = 0f;
        rollout.Mask[2 * s + s - 2] = 0f;
        cpu.ComputeLogProbsAndValues(rollout);
        cpu.ScoreResponses(rollout);
        cpu.ComputeAdvantages(rollout);
        cpu.TrainMinibatch(rollout, [3, 1]); // the policy now differs from the reference: KL ≠ 0
        cpu.ComputeLogProbsAndValues(rollout);
        double meanKl = cpu.ComputeAdvantages(rollout);
        Assert.That(Math.Abs(meanKl), Is.GreaterThan(1e-4), "a KL to penalise");

        using var device = KernelDevice.CreateCpu();
        using var update = new DevicePolicyUpdate(device, cpu.Policy);
        var o = cpu.Options;
        int trained = cpu.TrainableParameters.Length, head = cpu.ValueHead.Parameters.Length;
        update.UploadState(cpu.TrainableParameters, cpu.ValueHead.Parameters, new float[trained], new float[trained], new float[head], new float[head]);
        update.BeginRollout(b, r);
        for (int start = 0; start < b; start += 2)
        {
            update.RolloutLogProbsAndValues(rollout.Tokens.AsSpan(start * s, 2 * s), rollout.Mask.AsSpan(start * s, 2 * s), rollout.ResponseTokens.AsSpan(start * r, 2 * r),
                start, 2, s, rollout.PromptLength, o.Temperature);
        }

        var stats = update.RolloutAdvantages(rollout.ResponseMask, rollout.Scores, kl == KlEstimator.K3, cpu.Kl.Value, o.Gamma, o.Lambda);
        var adv = new float[b * r];
        var ret = new float[b * r];
        var values = new float[b * r];
        update.DownloadRollout(default, default, values, adv, ret);
        Mask(values, rollout.ResponseMask);
        DeviceTestBase.AssertCloseTo(values, rollout.Values, 1e-4, "values");
        DeviceTestBase.AssertCloseTo(ret, rollout.Returns, 1e-4, "returns");
        DeviceTestBase.AssertCloseTo(adv, rollout.Advantages, 1e-4, "whitened advantages");
        Assert.That(adv[2 * r + r - 1], Is.EqualTo(0f), "masked advantages are 0");
        Assert.That(stats.MeanKl, Is.EqualTo(meanKl).Within(1e-4 * Math.Abs(meanKl) + 1e-6), "mean KL");
        Assert.That(stats.ExplainedVariance, Is.EqualTo(ExplainedVariance(rollout)).Within(1e-4), "explained variance");

        // The minibatch update reading its rows from the device rollout matches the host update on the same rows.
        var d = update.TrainRolloutMinibatch(Rows(rollout.Tokens, [2, 0], s), Rows(rollout.Mask, [2, 0], s), Rows(rollout.ResponseTokens, [2, 0], r),
            Rows(rollout.ResponseMask, [2, 0], r), [2, 0], s, rollout.PromptLength, cpu.OptimizerSteps + 1, Settings(o));
        var c = update.TrainMinibatch(Rows(rollout.Tokens, [2, 0], s), Rows(rollout.Mask, [2, 0], s), Rows(rollout.ResponseTokens, [2, 0], r),
            Rows(rollout.ResponseMask, [2, 0], r), Rows(rollout.OldLogProbs, [2, 0], r), Rows(rollout.Values, [2, 0], r), Rows(rollout.Advantages, [2, 0], r),
            Rows(rollout.Returns, [2, 0], r), 2, s, rollout.PromptLength, cpu.OptimizerSteps + 2, Settings(o));
        var h = cpu.TrainMinibatch(rollout, [2, 0]);
        Assert.That(d.PolicyLoss, Is.EqualTo(h.PolicyLoss).Within(1e-4 * Math.Abs(h.PolicyLoss) + 1e-6), "policy loss from the device rollout");
        Assert.That(d.ValueLoss, Is.EqualTo(h.ValueLoss).Within(1e-4 * h.ValueLoss), "value loss from the device rollout");
        Assert.That(d.GradNorm, Is.EqualTo(h.GradNorm).Within(1e-4 * h.GradNorm), "gradient norm from the device rollout");
        Assert.That(c.ValueLoss, Is.Not.EqualTo(d.ValueLoss), "the second step saw the first step's update");
    }

    [Test]
    public void RolloutCallsCheckTheirArguments()
    {
        using var device = KernelDevice.CreateCpu();
        var policy = PpoTestSupport.TinyByteModel();
        policy.AttachAdapter(new Rlhf.Model.LoraConfig(2, 4, ["c_attn"]), 1);
        using var update = new DevicePolicyUpdate(device, policy);
        var settings = Settings(Options("cpu"));
        Assert.Throws<InvalidOperationException>(() => update.RolloutAdvantages(new float[4], new float[2], false, 0.1f, 1f, 0.95f));
        update.BeginRollout(2, 2);
        var rows = Assert.Throws<ArgumentOutOfRangeException>(() => update.TrainRolloutMinibatch(new int[8], new float[8], new int[4], new float[4], [0, 2], 4, 2, 1, settings));
        Assert.That(rows!.Message, Does.Contain("row index 2 at 1"));
        var length = Assert.Throws<ArgumentException>(() => update.TrainRolloutMinibatch(new int[10], new float[10], new int[6], new float[6], [0, 1], 5, 2, 1, settings));
        Assert.That(length!.Message, Does.Contain("response length is 3"));
        var first = Assert.Throws<ArgumentOutOfRangeException>(() => update.RolloutLogProbsAndValues(new int[8], new float[8], new int[4], 1, 2, 4, 2, 1f));
        Assert.That(first!.ParamName, Is.EqualTo("firstRow"));
        Assert.Throws<ArgumentException>(() => update.RolloutAdvantages(new float[3], new float[2], false, 0.1f, 1f, 0.95f));
    }

    private static void AssertSameMetrics(PpoMetrics d, PpoMetrics c, string at)
    {
        Assert.That(d.MeanScore, Is.EqualTo(c.MeanScore), "the same rollouts, " + at);
        Assert.That(d.MeanResponseLength, Is.EqualTo(c.MeanResponseLength), at);
        Assert.That(d.MinibatchSteps, Is.EqualTo(c.MinibatchSteps), at);
        Assert.That(d.MeanKl, Is.EqualTo(c.MeanKl).Within(1e-4 * Math.Abs(c.MeanKl) + 1e-6), "mean KL, " + at);
        Assert.That(d.ExplainedVariance, Is.EqualTo(c.ExplainedVariance).Within(1e-4 * Math.Abs(c.ExplainedVariance) + 1e-5), "explained variance, " + at);
        Assert.That(d.PolicyLoss, Is.EqualTo(c.PolicyLoss).Within(1e-4 * Math.Abs(c.PolicyLoss) + 1e-6), "policy loss, " + at);
        Assert.That(d.ValueLoss, Is.EqualTo(c.ValueLoss).Within(1e-4 * c.ValueLoss), "value loss, " + at);
        Assert.That(d.Entropy, Is.EqualTo(c.Entropy).Within(1e-4 * c.Entropy), "entropy, " + at);
        Assert.That(d.ApproxKl, Is.EqualTo(c.ApproxKl).Within(1e-4 * Math.Abs(c.ApproxKl) + 1e-7), "approx KL, " + at);
        Assert.That(d.ClipFraction, Is.EqualTo(c.ClipFraction).Within(1e-6), "clip fraction, " + at);
        Assert.That(d.GradNorm, Is.EqualTo(c.GradNorm).Within(1e-4 * c.GradNorm), "gradient norm, " + at);
    }

    private static PolicyUpdateSettings Settings(PpoOptions o) => new(o.Temperature, o.ClipRange, o.ValueClipRange, o.ValueCoef, o.EntropyCoef, o.MaxGradNorm,
        o.LearningRate, o.AdamBeta1, o.AdamBeta2, o.AdamEpsilon, o.WeightDecay);

    private static T[] Rows<T>(T[] source, int[] rows, int length)
    {
        var r = new T[rows.Length * length];
        for (int i = 0; i < rows.Length; i++) Array.Copy(source, rows[i] * length, r, i * length, length);
        return r;
    }

    private static void Mask(float[] x, float[] mask)
    {
        for (int i = 0; i < x.Length; i++) x[i] = mask[i] != 0f ? x[i] : 0f;
    }

    // 1 − Var(returns − values)/Var(returns) over the valid tokens, in double (scalar reference).
    private static double ExplainedVariance(PpoRollout rollout)
    {
        double Var(Func<int, double> f)
        {
            double sum = 0, n = 0, ss = 0;
            for (int i = 0; i < rollout.ResponseMask.Length; i++)
            {
                if (rollout.ResponseMask[i] == 0f) continue;
                sum += f(i);
                n++;
            }

            double mean = sum / n;
            for (int i = 0; i < rollout.ResponseMask.Length; i++)
            {
                if (rollout.ResponseMask[i] != 0f) ss += (f(i) - mean) * (f(i) - mean);
            }

            return ss / (n - 1);
        }

        return 1 - Var(i => rollout.Returns[i] - (double)rollout.Values[i]) / Var(i => rollout.Returns[i]);
    }
}
