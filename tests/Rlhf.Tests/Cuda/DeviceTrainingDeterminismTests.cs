using ILGPU.Runtime;
using Rlhf.Cai;
using Rlhf.Compute;
using Rlhf.Kernels.Device;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Sft;
using Rlhf.Tests.Formats;
using Rlhf.Tests.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// The device training path gives the same bits for the same inputs: two SFT runs (or two PPO runs) on ILGPU's CPU
/// accelerator, the second after device buffers full of NaN were freed (so memory a kernel reads before writing would
/// differ), must give identical metrics and weights. The device-vs-CPU tests compare to 1e-4, and AdamW's m/√v turns any
/// run-to-run change of a near-zero gradient into an lr-sized step; this pins down the device half of that comparison.
/// </summary>
[NonParallelizable]
public class DeviceTrainingDeterminismTests
{
    [TestCase(0)]
    [TestCase(2)]
    public void SftRunOnTheDeviceGivesTheSameBitsTwice(int loraRank)
    {
        var first = Run(loraRank);
        PoisonFreedDeviceMemory();
        var second = Run(loraRank);
        Assert.That(second.Metrics, Is.EqualTo(first.Metrics), "metrics.jsonl");
        AssertSameBits(second.Weights, first.Weights);
    }

    [Test]
    public void FullFineTuningPpoOnTheDeviceGivesTheSameBitsTwice()
    {
        var first = Ppo();
        PoisonFreedDeviceMemory();
        var second = Ppo();
        Assert.That(second.Metrics, Is.EqualTo(first.Metrics), "metrics");
        AssertSameBits(second.Weights, first.Weights);
    }

    private static (string Metrics, float[] Weights) Ppo()
    {
        // As DevicePpoResidentTests.FullFineTuningIterationsOnTheDeviceMatchTheCpu, one iteration (two minibatch steps).
        var options = new PpoOptions
        {
            BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 4, LearningRate = 2e-3f, LoraRank = 0, Seed = 5,
            InitialKlCoef = 0.2f, MaxGradNorm = 0.5f, EntropyCoef = 0.05f, ValueCoef = 0.5f, ClipRange = 0.1f, ValueClipRange = 0.1f,
            WeightDecay = 0.01f, Temperature = 0.9f, MaxSteps = 3, Device = CausalLmBackends.IlgpuCpu, Gamma = 0.95f, Lambda = 0.9f,
        };
        using var trainer = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, options);
        var m = trainer.Step();
        string metrics = $"{m.MeanScore:R} {m.MeanKl:R} {m.PolicyLoss:R} {m.ValueLoss:R} {m.Entropy:R} {m.ApproxKl:R} {m.ClipFraction:R} {m.GradNorm:R} {m.ExplainedVariance:R}";

        var weights = trainer.TrainableParameters.ToArray();
        return (metrics + " | value head " + string.Join(' ', trainer.ValueHead.Parameters), weights);
    }

    private static void AssertSameBits(float[] actual, float[] expected)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(actual[i]) != BitConverter.SingleToUInt32Bits(expected[i]))
                Assert.Fail($"weight {i}: {actual[i]:R} on the second run, {expected[i]:R} on the first");
        }
    }

    private static (string Metrics, float[] Weights) Run(int loraRank)
    {
        var examples = new List<SftExample> { new("hi", "ok"), new("yo", "no!"), new("ab", "cd"), new("x", "yz"), new("q", "a") };
        var options = new SftOptions(Steps: 2, BatchSize: 2, LearningRate: loraRank > 0 ? 0.02f : 0.005f, HeldOutFraction: 0.2, LoraRank: loraRank, MaxSeq: 24, Seed: 1,
            Device: CausalLmBackends.IlgpuCpu);
        using var dir = new TempDir();
        var model = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 8, 1, 2));
        model.InitializeRandom(2, 0.1f);
        SftTrainer.Run(model, new ByteTokenizer(), ChatFormat.Plain, examples, options, dir.Path);
        return (File.ReadAllText(dir.File("metrics.jsonl")), (float[])model.Parameters.Clone());
    }

    // The CPU accelerator's buffers come from the native heap uninitialised: freeing NaN-filled ones of the training's
    // sizes makes the next run's fresh buffers likely to start as NaN wherever nothing has written them yet.
    private static void PoisonFreedDeviceMemory()
    {
        using var device = KernelDevice.CreateCpu();
        var buffers = new List<IDisposable>();
        for (int n = 16; n <= 1 << 17; n = n * 3 / 2)
        {
            var nan = new float[n];
            Array.Fill(nan, float.NaN);
            buffers.Add(device.Accelerator.Allocate1D(nan));
        }

        foreach (var b in buffers) b.Dispose();
    }
}
