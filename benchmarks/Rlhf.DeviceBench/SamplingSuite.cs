using ILGPU.Runtime;
using Rlhf.Compute;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.DeviceBench;

/// <summary>
/// Token picking on the device (what decoding with <see cref="DeviceGenerator"/> runs per step): the tokens and
/// log-probabilities of seeded sampling (plain and top-k/top-p) and greedy decoding against the CPU
/// <see cref="Generator"/>, then the pick kernels alone over [rows, vocab] logits.
/// </summary>
internal static class SamplingSuite
{
    public static void Run(KernelDevice device, BenchScale scale, DeviceReport report)
    {
        var config = TransformerConfig.Gpt2(vocabSize: 97, contextLength: 24, modelDim: 16, layerCount: 1, headCount: 2);
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(4, std: 0.5f);
        using var dev = new DeviceTransformer(device, config);
        dev.UploadParameters(cpu.Parameters);
        using var onDevice = new DeviceGenerator(dev);
        var onCpu = new Generator(cpu);
        int[][] prompts = [[3, 5, 7], [2, 4], [9]];
        foreach (var (name, options) in new[]
        {
            ("sampled, T 0.9", new GenerationOptions(MaxNewTokens: 12, Temperature: 0.9f, Seed: 5, EosTokenId: 0)),
            ("greedy", new GenerationOptions(MaxNewTokens: 12, Temperature: 0f)),
            ("top-k 20, top-p 0.9, T 0.8", new GenerationOptions(MaxNewTokens: 12, Temperature: 0.8f, TopK: 20, TopP: 0.9f, Seed: 6, EosTokenId: 0)),
        })
        {
            var want = onCpu.Generate(prompts, options);
            var got = onDevice.Generate(prompts, options);
            bool same = got.Tokens.AsSpan().SequenceEqual(want.Tokens) && got.Lengths.AsSpan().SequenceEqual(want.Lengths);
            report.AddParity($"decoding picks on the device ({name}): same tokens, log-probs", same ? Errors.MaxRelative(got.LogProbs, want.LogProbs, 1e-3) : double.PositiveInfinity, 1e-4);
        }

        int rows = scale.Rows, v = scale.Vocab;
        var acc = device.Accelerator;
        var kernels = new SamplingDeviceKernels(device);
        using var logits = acc.ToDevice(DeviceArrays.Random(rows * v, 31, 3f));
        var draws = new double[rows];
        var rng = new Random(32);
        for (int i = 0; i < rows; i++) draws[i] = rng.NextDouble();
        using var uniforms = acc.Allocate1D(draws);
        using var tokens = acc.Allocate1D<int>(rows);
        using var logProbs = acc.Allocate1D<float>(rows);
        double ms = Stopwatches.MedianMilliseconds(acc, () => kernels.Pick(logits.View, uniforms.View, tokens.View, logProbs.View, rows, v, 0.9f));
        report.AddTiming($"sampling pick [{rows}x{v}]", ms, 3L * rows * v * sizeof(float), "logits read 3x (max, sum, chunk sums) + 1 chunk rescanned");
        long scratch = (long)rows * SamplingDeviceKernels.ScratchPerRow(v);
        using var scratchProbs = acc.Allocate1D<float>(scratch);
        using var scratchTokens = acc.Allocate1D<int>(scratch);
        double topMs = Stopwatches.MedianMilliseconds(acc, () => kernels.Pick(logits.View, uniforms.View, tokens.View, logProbs.View, rows, v, 0.9f, 50, 0.95f, scratchProbs.View, scratchTokens.View));
        report.AddTiming($"top-k 50 / top-p 0.95 pick [{rows}x{v}]", topMs, 3L * rows * v * sizeof(float), "as the sampling pick, plus one read per threshold halving");
    }
}
