using System.Text.Json;
using Rlhf.Cai;
using Rlhf.Compute;
using Rlhf.Model;
using Rlhf.Sft;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;
using Rlhf.Training;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// The causal-LM training loop (<see cref="CausalLmTrainer"/>, <see cref="SftTrainer"/>) on a device backend against
/// today's CPU path: full fine-tuning and LoRA (fused GPT-2 c_attn and Llama q/v column blocks), with gradient
/// accumulation, clipping and AdamW, on ILGPU's CPU accelerator.
/// </summary>
[NonParallelizable]
public class DeviceTrainingTests : DeviceTestBase
{
    private static readonly int[] Tokens = [1, 4, 9, 2, 7, 0, 3, 3, 10, 5, 6, 1];
    private static readonly float[] Mask = [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    private static readonly float[] LossMask = [0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0];

    private static IReadOnlyList<TokenBatch> MicroBatches() =>
    [
        new TokenBatch(Tokens, Mask, LossMask, 2, 6),
        new TokenBatch(Tokens[..6], Mask[6..], null, 1, 6),
    ];

    [TestCase("gpt2", 0)]
    [TestCase("gpt2", 2)]
    [TestCase("llama", 2)]
    public void TrainerStepsOnTheDeviceMatchTheCpuModel(string family, int loraRank)
    {
        var config = family == "gpt2" ? TinyGpt2() : TinyLlama();
        var cpuModel = new TransformerModel(config);
        cpuModel.InitializeRandom(9, std: 0.3f);
        var start = (float[])cpuModel.Parameters.Clone();
        LoraAdapter? lora = null;
        if (loraRank > 0)
        {
            lora = cpuModel.AttachAdapter(LoraConfig.Default(config.Family, loraRank), 4);
            // B starts at zero (PEFT); make it non-zero so the adapter's path carries signal from the first step.
            var b = Random(lora.Parameters.Length, 5, 0.3f);
            b.CopyTo(lora.Parameters, 0);
        }

        // Full training at a smaller rate: AdamW's m/√v turns the relative rounding error of a small (cancelling)
        // gradient into the same relative error of a full lr-sized step, which at 0.05 approaches the 1e-4 tolerance.
        var schedule = new LearningRateSchedule(loraRank > 0 ? 0.05f : 0.005f, 1, 3, DecayKind.Cosine);
        // maxGradNorm below the first steps' norms so clipping is exercised.
        var cpu = new CausalLmTrainer(cpuModel, schedule, maxGradNorm: 0.5f, weightDecay: 0.1f);
        using var dev = new DeviceTransformer(Device, config);
        dev.UploadParameters(start);
        if (lora != null) dev.AttachAdapter(lora);
        var onDevice = new CausalLmTrainer(dev, schedule, maxGradNorm: 0.5f, weightDecay: 0.1f);
        bool clipped = false;
        for (int step = 0; step < 3; step++)
        {
            var c = cpu.Step(MicroBatches());
            var d = onDevice.Step(MicroBatches());
            Assert.That(d.Loss, Is.EqualTo(c.Loss).Within(1e-4 * c.Loss), $"loss at step {step}");
            Assert.That(d.GradNorm, Is.EqualTo(c.GradNorm).Within(1e-4 * c.GradNorm), $"gradient norm at step {step}");
            Assert.That(d.LearningRate, Is.EqualTo(c.LearningRate));
            clipped |= c.GradNorm > 0.5;
        }

        Assert.That(clipped, "clipping was exercised");
        var got = new float[start.Length];
        dev.DownloadParameters(got);
        if (lora is null)
        {
            Assert.That(got.AsSpan().SequenceEqual(start), Is.False, "the base trained");
            AssertCloseBesidesKeyBias(got, cpuModel.Parameters, cpuModel.Layout, "base weights after 3 steps");
        }
        else
        {
            Assert.That(got.AsSpan().SequenceEqual(start), "the base stays frozen under LoRA");
            var adapter = new float[lora.Parameters.Length];
            dev.DownloadAdapter(adapter);
            AssertClose(adapter, cpuModel.Adapter!.Parameters, 1e-4, "adapter after 3 steps");
        }
    }

    [TestCase(0)]
    [TestCase(2)]
    public void SftRunOnTheDeviceMatchesTheCpuRun(int loraRank)
    {
        var examples = new List<SftExample> { new("hi", "ok"), new("yo", "no!"), new("ab", "cd"), new("x", "yz"), new("q", "a") };
        var options = new SftOptions(Steps: 2, BatchSize: 2, LearningRate: loraRank > 0 ? 0.02f : 0.005f, HeldOutFraction: 0.2, LoraRank: loraRank, MaxSeq: 24, Seed: 1);
        var runs = new List<(double[] Losses, float[] Weights)>();
        foreach (string device in new[] { "cpu", CausalLmBackends.IlgpuCpu })
        {
            using var dir = new TempDir();
            var model = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 8, 1, 2));
            model.InitializeRandom(2, 0.1f);
            var result = SftTrainer.Run(model, new ByteTokenizer(), ChatFormat.Plain, examples, options with { Device = device }, dir.Path);
            var losses = new List<double>();
            foreach (var line in File.ReadAllLines(Path.Combine(dir.Path, "metrics.jsonl")))
            {
                using var doc = JsonDocument.Parse(line);
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Name is "loss" or "held_out_loss" or "grad_norm") losses.Add(p.Value.GetDouble());
                }
            }

            Assert.That(result.FinalHeldOutLoss, Is.Not.Null);
            runs.Add((losses.ToArray(), (float[])model.Parameters.Clone()));
        }

        var (cpuLosses, cpuWeights) = runs[0];
        var (devLosses, devWeights) = runs[1];
        Assert.That(devLosses, Has.Length.EqualTo(cpuLosses.Length).And.Length.EqualTo(1 + 2 * 2 + 1), "initial held-out, 2×(loss, grad norm), final held-out");
        for (int i = 0; i < cpuLosses.Length; i++) Assert.That(devLosses[i], Is.EqualTo(cpuLosses[i]).Within(1e-4 * Math.Abs(cpuLosses[i])), $"metric {i}");
        // The saved model (LoRA merged) is what users get: it must agree too.
        AssertCloseBesidesKeyBias(devWeights, cpuWeights, new ParameterLayout(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 8, 1, 2)), "trained (merged) weights");
    }

    /// <summary>
    /// Every weight within 1e-4 except GPT-2's key bias: softmax over keys ignores q·b_k, so its true gradient is exactly
    /// zero and both paths see only rounding noise, which AdamW's m/√v turns into ±lr steps of either sign.
    /// </summary>
    internal static void AssertCloseBesidesKeyBias(float[] actual, float[] expected, ParameterLayout layout, string what)
    {
        int d = layout.Config.ModelDim;
        int skipped = 0;
        foreach (var t in layout.Tensors)
        {
            if (!t.Name.EndsWith("attn.c_attn.bias", StringComparison.Ordinal))
            {
                AssertClose(actual.AsSpan(t.Offset, t.Length), expected.AsSpan(t.Offset, t.Length), 1e-4, $"{what}: {t.Name}");
                continue;
            }

            AssertClose(actual.AsSpan(t.Offset, d), expected.AsSpan(t.Offset, d), 1e-4, $"{what}: {t.Name} (q)");
            AssertClose(actual.AsSpan(t.Offset + 2 * d, d), expected.AsSpan(t.Offset + 2 * d, d), 1e-4, $"{what}: {t.Name} (v)");
            skipped++;
        }

        Assert.That(skipped, Is.EqualTo(layout.Config.LayerCount), "one key bias per layer left out");
    }

    [Test]
    public void AdapterMustFitTheModel()
    {
        var big = new TransformerModel(TinyGpt2() with { LayerCount = 3 });
        var lora = big.AttachAdapter(LoraConfig.Default(ModelFamily.Gpt2, 2), 1);
        using var dev = new DeviceTransformer(Device, TinyGpt2());
        Assert.Throws<ArgumentException>(() => dev.AttachAdapter(lora));
    }
}
