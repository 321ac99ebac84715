using Rlhf.Compute;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tests.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// The PPO policy update on a device (<see cref="DevicePolicyUpdate"/> behind <see cref="PpoOptions.Device"/>) against the
/// CPU <see cref="PpoTrainer"/>: the same rollout, the same minibatch rows, to 1e-4 relative on ILGPU's CPU accelerator.
/// </summary>
[NonParallelizable]
public class DevicePpoUpdateTests
{
    private static PpoOptions Options(int loraRank, string device) => new()
    {
        // Full fine-tuning at a smaller rate: AdamW's m/√v gives rarely-used (tied) embedding rows full-size steps from
        // tiny gradients, so their rounding differences would dominate a 1e-4 comparison at 2e-2.
        BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 4, LearningRate = loraRank > 0 ? 2e-2f : 2e-3f, LoraRank = loraRank, Seed = 3,
        InitialKlCoef = 0.1f, MaxGradNorm = 0.5f, EntropyCoef = 0.05f, ValueCoef = 0.5f, ClipRange = 0.1f, ValueClipRange = 0.1f,
        WeightDecay = 0.01f, Temperature = 0.9f, MaxSteps = 1, Device = device,
    };

    private static PpoTrainer Trainer(int loraRank, string device) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, Options(loraRank, device));

    [TestCase(4)]
    [TestCase(0)]
    public void TwoMinibatchStepsMatchTheCpuTrainer(int loraRank)
    {
        using var cpu = Trainer(loraRank, "cpu");
        using var dev = Trainer(loraRank, CausalLmBackends.IlgpuCpu);
        var rollout = cpu.Generate();
        // Random byte models rarely sample EOS: end rows 0 and 3 early by hand so masked response tokens are covered.
        int r = rollout.ResponseLength, s = rollout.SequenceLength;
        foreach (int row in new[] { 0, 3 })
        {
            rollout.ResponseMask[row * r + r - 1] = 0f;
            rollout.Mask[row * s + s - 1] = 0f;
            rollout.Lengths[row] = r - 1;
        }

        cpu.ComputeLogProbsAndValues(rollout);
        cpu.ScoreResponses(rollout);
        cpu.ComputeAdvantages(rollout);
        var start = cpu.TrainableParameters.ToArray();
        int[][] minibatches = [[2, 0], [1, 3]];
        bool clipped = false;
        foreach (var rows in minibatches)
        {
            var c = cpu.TrainMinibatch(rollout, rows);
            var d = dev.TrainMinibatch(rollout, rows);
            string at = $"rows [{string.Join(",", rows)}]";
            Assert.That(d.PolicyLoss, Is.EqualTo(c.PolicyLoss).Within(1e-4 * Math.Abs(c.PolicyLoss) + 1e-6), "policy loss " + at);
            Assert.That(d.ValueLoss, Is.EqualTo(c.ValueLoss).Within(1e-4 * c.ValueLoss), "value loss " + at);
            Assert.That(d.Entropy, Is.EqualTo(c.Entropy).Within(1e-4 * c.Entropy), "entropy " + at);
            Assert.That(d.ApproxKl, Is.EqualTo(c.ApproxKl).Within(1e-4 * Math.Abs(c.ApproxKl) + 1e-7), "approx KL " + at);
            Assert.That(d.ClipFraction, Is.EqualTo(c.ClipFraction), "clip fraction " + at);
            Assert.That(d.ValueClipFraction, Is.EqualTo(c.ValueClipFraction), "value clip fraction " + at);
            Assert.That(d.GradNorm, Is.EqualTo(c.GradNorm).Within(1e-4 * c.GradNorm), "gradient norm " + at);
            clipped |= c.GradNorm > 0.5;
        }

        Assert.That(clipped, "gradient clipping was exercised");
        Assert.That(dev.OptimizerSteps, Is.EqualTo(cpu.OptimizerSteps));
        Assert.That(cpu.TrainableParameters.SequenceEqual(start), Is.False, "the policy trained");
        CompareTrained(cpu, dev, loraRank);
    }

    [TestCase(4)]
    [TestCase(0)]
    public void RolloutLogProbsAndValuesOnTheDeviceMatchTheCpu(int loraRank)
    {
        using var cpu = Trainer(loraRank, "cpu");
        using var dev = Trainer(loraRank, CausalLmBackends.IlgpuCpu);
        // Make the policy differ from the reference so the two passes are told apart.
        var a = cpu.Generate();
        var b = dev.Generate();
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens), "rollouts sampled from the same weights (on the device for dev)");
        a.Mask[^1] = b.Mask[^1] = 0f;
        a.ResponseMask[^1] = b.ResponseMask[^1] = 0f;
        cpu.ComputeLogProbsAndValues(a);
        cpu.ScoreResponses(a);
        cpu.ComputeAdvantages(a);
        cpu.TrainMinibatch(a, [0, 1]);
        dev.TrainMinibatch(a, [0, 1]);
        cpu.ComputeLogProbsAndValues(a);
        dev.ComputeLogProbsAndValues(b);
        Assert.That(a.OldLogProbs.AsSpan().SequenceEqual(a.ReferenceLogProbs), Is.False, "policy and reference differ after a step");
        DeviceTestBase.AssertCloseTo(b.ReferenceLogProbs, a.ReferenceLogProbs, 1e-4, "reference log-probs");
        DeviceTestBase.AssertCloseTo(b.OldLogProbs, a.OldLogProbs, 1e-4, "policy log-probs");
        DeviceTestBase.AssertCloseTo(b.Values, a.Values, 1e-4, "values");
        Assert.That(b.OldLogProbs[^1], Is.EqualTo(0f), "masked positions are zeroed");
    }

    [Test]
    public void OneIterationWithDeviceUpdateMatchesTheCpuIteration()
    {
        using var cpu = Trainer(4, "cpu");
        using var dev = Trainer(4, CausalLmBackends.IlgpuCpu);
        var c = cpu.Step();
        var d = dev.Step();
        Assert.That(d.MeanScore, Is.EqualTo(c.MeanScore), "the same rollouts (the device samples the CPU tokens)");
        Assert.That(d.MinibatchSteps, Is.EqualTo(c.MinibatchSteps).And.EqualTo(2));
        Assert.That(d.PolicyLoss, Is.EqualTo(c.PolicyLoss).Within(1e-4 * Math.Abs(c.PolicyLoss) + 1e-6));
        Assert.That(d.ValueLoss, Is.EqualTo(c.ValueLoss).Within(1e-4 * c.ValueLoss));
        Assert.That(d.Entropy, Is.EqualTo(c.Entropy).Within(1e-4 * c.Entropy));
        // The trained state is back on the host after the update (rollouts and checkpoints read it there).
        CompareTrained(cpu, dev, 4);
    }

    [Test]
    public void UnknownDeviceIsRejectedBeforeWork()
    {
        var ex = Assert.Throws<Rlhf.IO.InvalidInputException>(() => Trainer(4, "tpu"));
        Assert.That(ex!.Message, Does.Contain("Device"));
    }

    private static void CompareTrained(PpoTrainer cpu, PpoTrainer dev, int loraRank)
    {
        var got = dev.TrainableParameters.ToArray();
        var want = cpu.TrainableParameters.ToArray();
        if (loraRank == 0) DeviceTrainingTests.AssertCloseBesidesKeyBias(got, want, cpu.Policy.Layout, "policy weights");
        else DeviceTestBase.AssertCloseTo(got, want, 1e-4, "adapter weights");
        DeviceTestBase.AssertCloseTo(dev.ValueHead.Parameters, cpu.ValueHead.Parameters, 1e-4, "value head");
    }
}
