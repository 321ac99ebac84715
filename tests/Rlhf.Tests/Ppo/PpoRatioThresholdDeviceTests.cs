using Rlhf.Compute;
using Rlhf.Ppo;
using Rlhf.Tests.Cuda;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

/// <summary><see cref="PpoOptions.RatioThreshold"/> on a device (ILGPU's CPU accelerator) against the CPU trainer, to 1e-4 relative.</summary>
[NonParallelizable]
public class PpoRatioThresholdDeviceTests
{
    private static PpoOptions Options(int loraRank, string device) => new()
    {
        // As DevicePpoUpdateTests: full fine-tuning at a smaller rate so AdamW's rounding stays under 1e-4.
        BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 4, LearningRate = loraRank > 0 ? 2e-2f : 2e-3f, LoraRank = loraRank, Seed = 3,
        InitialKlCoef = 0.1f, MaxGradNorm = 0.5f, EntropyCoef = 0.05f, ValueCoef = 0.5f, WeightDecay = 0.01f, MaxSteps = 1, Device = device,
    };

    private static PpoTrainer Trainer(PpoOptions o) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);

    [TestCase(4)]
    [TestCase(0)]
    public void ASkippedMinibatchBetweenTrainedOnesMatchesTheCpu(int loraRank)
    {
        using var cpu = Trainer(Options(loraRank, "cpu"));
        using var dev = Trainer(Options(loraRank, CausalLmBackends.IlgpuCpu));
        var rollout = cpu.Generate();
        cpu.ComputeLogProbsAndValues(rollout);
        cpu.ScoreResponses(rollout);
        cpu.ComputeAdvantages(rollout);
        // Rows 0 and 2 get ratios of e²⁰: their minibatch is skipped, after a trained one (so AdamW has momentum) and before another.
        int r = rollout.ResponseLength;
        foreach (int row in new[] { 0, 2 })
        {
            for (int i = row * r; i < (row + 1) * r; i++) rollout.OldLogProbs[i] -= 20f;
        }

        int[][] minibatches = [[1, 3], [2, 0], [3, 1]];
        int[] skipped = [0, 1, 0];
        for (int j = 0; j < minibatches.Length; j++)
        {
            var before = cpu.TrainableParameters.ToArray();
            var c = cpu.TrainMinibatch(rollout, minibatches[j]);
            var d = dev.TrainMinibatch(rollout, minibatches[j]);
            string at = $"minibatch {j}";
            Assert.That(c.SkippedMinibatches, Is.EqualTo(skipped[j]), at);
            Assert.That(d.SkippedMinibatches, Is.EqualTo(c.SkippedMinibatches), at);
            Assert.That(d.PolicyLoss, Is.EqualTo(c.PolicyLoss).Within(1e-4 * Math.Abs(c.PolicyLoss) + 1e-6), "policy loss, " + at);
            Assert.That(d.ValueLoss, Is.EqualTo(c.ValueLoss).Within(1e-4 * c.ValueLoss), "value loss, " + at);
            Assert.That(d.GradNorm, Is.EqualTo(c.GradNorm).Within(1e-4 * c.GradNorm), "gradient norm, " + at);
            Assert.That(cpu.TrainableParameters.SequenceEqual(before), Is.False, "every step moved the weights (the skipped one by momentum and decay), " + at);
            CompareTrained(cpu, dev, loraRank, at);
        }
    }

    [Test]
    public void AnIterationWhoseMinibatchesAllSkipMatchesTheCpu()
    {
        // Below 1 every minibatch of a fresh rollout (mean ratio ≈ 1) is skipped; this goes through the device's resident rollout.
        var o = Options(4, "cpu") with { RatioThreshold = 0.5f, PpoEpochs = 2, WeightDecay = 0f };
        using var cpu = Trainer(o);
        using var dev = Trainer(o with { Device = CausalLmBackends.IlgpuCpu });
        var start = cpu.TrainableParameters.ToArray();
        var c = cpu.Step();
        var d = dev.Step();
        Assert.That(c.SkippedMinibatches, Is.EqualTo(c.MinibatchSteps).And.EqualTo(4));
        Assert.That(d.SkippedMinibatches, Is.EqualTo(c.SkippedMinibatches));
        Assert.That(d.PolicyLoss, Is.Zero);
        Assert.That(d.Entropy, Is.EqualTo(c.Entropy).Within(1e-4 * c.Entropy));
        Assert.That(dev.TrainableParameters.SequenceEqual(start), "nothing moved on the device");
        Assert.That(cpu.TrainableParameters.SequenceEqual(start), "nor on the CPU");
    }

    private static void CompareTrained(PpoTrainer cpu, PpoTrainer dev, int loraRank, string at)
    {
        var got = dev.TrainableParameters.ToArray();
        var want = cpu.TrainableParameters.ToArray();
        if (loraRank == 0) DeviceTrainingTests.AssertCloseBesidesKeyBias(got, want, cpu.Policy.Layout, "policy weights, " + at);
        else DeviceTestBase.AssertCloseTo(got, want, 1e-4, "adapter weights, " + at);
        DeviceTestBase.AssertCloseTo(dev.ValueHead.Parameters, cpu.ValueHead.Parameters, 1e-4, "value head, " + at);
    }
}
