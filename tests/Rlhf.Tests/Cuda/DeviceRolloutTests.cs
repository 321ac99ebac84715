using Rlhf.Compute;
using Rlhf.Ppo;
using Rlhf.Tests.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// PPO rollouts decoded on the device (<see cref="DeviceGenerator"/> behind <see cref="PpoOptions.Device"/>) against the
/// CPU trainer's: the same seeds and sampler, so the same tokens, on ILGPU's CPU accelerator.
/// </summary>
[NonParallelizable]
public class DeviceRolloutTests
{
    private static PpoTrainer Trainer(int loraRank, string device) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, new PpoOptions
        {
            BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 5, LearningRate = loraRank > 0 ? 2e-2f : 2e-3f, LoraRank = loraRank,
            Seed = 5, Temperature = 0.9f, TopK = 40, TopP = 0.95f, MaxSteps = 2, Device = device,
        });

    // Two seeded iterations: the second samples after an update, from the weights the device trained.
    [TestCase(4)]
    [TestCase(0)]
    public void SeededIterationsSampleTheCpuTokens(int loraRank)
    {
        using var cpu = Trainer(loraRank, "cpu");
        using var dev = Trainer(loraRank, CausalLmBackends.IlgpuCpu);
        for (int iteration = 0; iteration < 2; iteration++)
        {
            AssertSameRollout(cpu.Generate(), dev.Generate(), $"iteration {iteration}");
            var c = cpu.Step();
            var d = dev.Step();
            Assert.That(d.MeanScore, Is.EqualTo(c.MeanScore), $"scores of iteration {iteration}");
            Assert.That(d.PolicyLoss, Is.EqualTo(c.PolicyLoss).Within(1e-4 * Math.Abs(c.PolicyLoss) + 1e-6), $"policy loss of iteration {iteration}");
        }

        Assert.That(dev.Iteration, Is.EqualTo(2));
    }

    [Test]
    public void RolloutsAreDecodedFromTheDeviceWeightsAndFollowHostEdits()
    {
        using var cpu = Trainer(4, "cpu");
        using var dev = Trainer(4, CausalLmBackends.IlgpuCpu);
        var before = cpu.Generate();

        // Host edits to the trained weights (as a loaded checkpoint makes) reach the device before it samples.
        var scaled = cpu.Policy.Adapter!.Parameters;
        for (int i = 0; i < scaled.Length; i++) scaled[i] = 0.5f * MathF.Sin(i);
        scaled.CopyTo(dev.Policy.Adapter!.Parameters, 0);
        var edited = cpu.Generate();
        Assert.That(edited.Tokens, Is.Not.EqualTo(before.Tokens), "the edit changes the CPU samples");
        AssertSameRollout(edited, dev.Generate(), "after a host edit of the adapter");

        // The frozen base lives on the device since construction: scrambling the host's copy leaves device rollouts alone.
        var hostBase = dev.Policy.Parameters;
        for (int i = 0; i < hostBase.Length; i++) hostBase[i] = 0f;
        AssertSameRollout(edited, dev.Generate(), "with the host's base zeroed");
    }

    private static void AssertSameRollout(PpoRollout expected, PpoRollout actual, string what)
    {
        Assert.That(actual.Tokens, Is.EqualTo(expected.Tokens), "tokens " + what);
        Assert.That(actual.Mask, Is.EqualTo(expected.Mask), "mask " + what);
        Assert.That(actual.ResponseTokens, Is.EqualTo(expected.ResponseTokens), "response tokens " + what);
        Assert.That(actual.Lengths, Is.EqualTo(expected.Lengths), "lengths " + what);
        Assert.That(actual.Responses, Is.EqualTo(expected.Responses), "responses " + what);
    }
}
