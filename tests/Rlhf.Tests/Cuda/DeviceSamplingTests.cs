using Rlhf.Compute;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// Token picking on the device (<see cref="SamplingDeviceKernels"/> behind <see cref="IDecodeSampler"/>) against the host
/// <see cref="DecodingLoop"/> on the same logits and seed: the same tokens, log-probabilities to 1e-5.
/// </summary>
[NonParallelizable]
public class DeviceSamplingTests : DeviceTestBase
{
    private const int Vocab = 301; // not a multiple of the group size: a short last chunk

    /// <summary>Logits for (step, row) from a seed, the same on both sides; some rows peaked, some with −∞ entries.</summary>
    private static float[] StepLogits(int step, int batch)
    {
        var z = Random(batch * Vocab, (ulong)(100 + step), 3f);
        for (int b = 0; b < batch; b++)
        {
            if (b % 3 == 1) z[b * Vocab + (step * 7 + b) % Vocab] += 12f; // nearly certain
            if (b % 3 == 2)
            {
                for (int j = 0; j < Vocab; j += 2) z[b * Vocab + j] = float.NegativeInfinity; // p = 0: skipped
            }
        }

        return z;
    }

    [TestCase(0.7f, 0)]
    [TestCase(1f, 4)]
    [TestCase(0f, 0)]
    public void DevicePicksAreTheHostSamplersPicks(float temperature, int groupSize)
    {
        const int batch = 7;
        // No EOS (-1): every row runs all 30 steps, so each step draws for every row.
        var options = new GenerationOptions(MaxNewTokens: 30, Temperature: temperature, Seed: 17, EosTokenId: -1);
        var (host, device) = ReplayedLogits.Decode(this, batch, Vocab, groupSize, StepLogits, options);
        Assert.That(device.Tokens, Is.EqualTo(host.Tokens), "tokens");
        AssertClose(device.LogProbs, host.LogProbs, 1e-5, "log-probabilities");
        for (int b = 2; b < batch; b += 3)
        {
            for (int i = 0; i < 30; i++) Assert.That(host.Tokens[b * 30 + i] % 2, Is.EqualTo(1), "a −∞ logit is never picked");
        }

        var distinct = new HashSet<int>(host.Tokens);
        Assert.That(distinct.Count, Is.GreaterThan(temperature == 0f ? 5 : 50), "the draws cover many tokens");
    }

    [Test]
    public void PickChecksItsArguments()
    {
        var kernels = new SamplingDeviceKernels(Device);
        var logits = Up(new float[2 * Vocab]);
        var u = Up(new double[2]);
        var t = Up(new int[2]);
        var lp = Up(new float[2]);
        Assert.That(Assert.Throws<ArgumentException>(() => kernels.Pick(logits, u, t, lp, 3, Vocab, 1f))!.ParamName, Is.EqualTo("logits"));
        Assert.That(Assert.Throws<ArgumentException>(() => kernels.Pick(logits, Up(new double[1]), t, lp, 2, Vocab, 1f))!.ParamName, Is.EqualTo("uniforms"));
        Assert.Throws<ArgumentOutOfRangeException>(() => kernels.Pick(logits, u, t, lp, 2, Vocab, -1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => kernels.Pick(logits, u, t, lp, 2, Vocab, float.NaN));
    }

    [Test]
    public void TheGeneratorSamplesOnTheDeviceAsOnTheHost()
    {
        var config = TransformerConfig.Gpt2(vocabSize: 97, contextLength: 24, modelDim: 16, layerCount: 1, headCount: 2);
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(4, std: 0.5f);
        using var dev = new DeviceTransformer(Device, config);
        dev.UploadParameters(cpu.Parameters);
        using var onDevice = new DeviceGenerator(dev);
        using var viaHost = new DeviceGenerator(dev) { SampleOnDevice = false };
        var onCpu = new Generator(cpu);
        int[][] prompts = [[3, 5, 7], [2, 4], [9]];
        foreach (var options in new[]
        {
            new GenerationOptions(MaxNewTokens: 12, Temperature: 0.9f, Seed: 5, EosTokenId: 0),
            new GenerationOptions(MaxNewTokens: 12, Temperature: 0f),
            new GenerationOptions(MaxNewTokens: 12, Temperature: 0.9f, TopK: 8, Seed: 5, EosTokenId: 0),
            new GenerationOptions(MaxNewTokens: 12, Temperature: 1.2f, TopP: 0.8f, Seed: 6, EosTokenId: 0),
            new GenerationOptions(MaxNewTokens: 12, Temperature: 0.7f, TopK: 30, TopP: 0.95f, Seed: 7),
        })
        {
            var expected = onCpu.Generate(prompts, options);
            foreach (var (name, g) in new[] { ("device picks", onDevice), ("host picks", viaHost) })
            {
                var actual = g.Generate(prompts, options);
                Assert.That(actual.Tokens, Is.EqualTo(expected.Tokens), $"{name}: tokens with {options}");
                Assert.That(actual.Lengths, Is.EqualTo(expected.Lengths), $"{name}: lengths with {options}");
                AssertClose(actual.LogProbs, expected.LogProbs, 1e-4, $"{name}: log-probabilities with {options}");
            }
        }
    }
}
