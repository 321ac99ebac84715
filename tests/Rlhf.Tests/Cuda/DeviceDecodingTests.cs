using Rlhf.Compute;
using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Cuda;

/// <summary>KV-cache decoding on the device against <see cref="TransformerModel.ForwardCached"/>.</summary>
[NonParallelizable]
public class DeviceDecodingTests : DeviceTestBase
{
    public static IEnumerable<TestCaseData> Models()
    {
        yield return new TestCaseData(TinyGpt2()).SetName("Gpt2");
        yield return new TestCaseData(TinyLlama()).SetName("LlamaGqa");
    }

    // Prefill of 3 (row 0 left-padded by one), then two single-token steps, then a 2-token chunk with lastOnly.
    [TestCaseSource(nameof(Models))]
    public void PrefillAndStepsMatchTheCpuCache(TransformerConfig config)
    {
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(11, std: 0.3f);
        using var dev = new DeviceTransformer(Device, config);
        dev.UploadParameters(cpu.Parameters);
        const int batch = 2, cap = 8;
        var cache = new KvCache(config, batch, cap);
        using var devCache = new DeviceKvCache(dev, batch, cap);
        var steps = new (int[] Tokens, float[] Mask, int New, bool LastOnly)[]
        {
            ([0, 5, 7, 1, 2, 3], [0, 1, 1, 1, 1, 1], 3, false),
            ([4, 9], [1, 1], 1, true),
            ([10, 6], [1, 1], 1, false),
            ([2, 8, 3, 3], [1, 1, 1, 1], 2, true),
        };
        foreach (var (tokens, mask, newTokens, lastOnly) in steps)
        {
            int rows = lastOnly ? batch : batch * newTokens;
            var expected = new float[rows * config.VocabSize];
            var actual = new float[expected.Length];
            cpu.ForwardCached(tokens, mask, newTokens, cache, expected, lastOnly);
            dev.ForwardCached(tokens, mask, newTokens, devCache, actual, lastOnly);
            AssertClose(actual, expected, 1e-4, $"logits at cache length {cache.Length}");
        }

        Assert.That(devCache.Length, Is.EqualTo(cache.Length));
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.ForwardCached([1, 1, 1, 1], [1, 1, 1, 1], 2, devCache, new float[2 * config.VocabSize], true), "7 + 2 > capacity 8");
    }

    public static IEnumerable<TestCaseData> AdapterModels()
    {
        // "c_proj" adapts both attn.c_proj and mlp.c_proj; Llama leaves k_proj and gate_proj out so groups are partly adapted.
        yield return new TestCaseData(TinyGpt2(), new[] { "c_attn", "c_proj", "c_fc" }).SetName("Gpt2Lora");
        yield return new TestCaseData(TinyLlama(), new[] { "q_proj", "v_proj", "o_proj", "up_proj", "down_proj" }).SetName("LlamaGqaLora");
    }

    // The same prefill/step schedule with an adapter attached, once through the adapter and once without it (the reference).
    [TestCaseSource(nameof(AdapterModels))]
    public void WithAnAdapterPrefillAndStepsMatchTheCpuCache(TransformerConfig config, string[] targets)
    {
        var (cpu, dev) = AdaptedPair(config, targets);
        using var _ = dev;
        const int batch = 2, cap = 8;
        var steps = new (int[] Tokens, float[] Mask, int New, bool LastOnly)[]
        {
            ([0, 5, 7, 1, 2, 3], [0, 1, 1, 1, 1, 1], 3, false),
            ([4, 9], [1, 1], 1, true),
            ([10, 6], [0, 1], 1, false),
            ([2, 8, 3, 3], [1, 1, 1, 1], 2, true),
        };
        var withAdapter = new List<float[]>();
        foreach (bool useAdapter in new[] { true, false })
        {
            var cache = new KvCache(config, batch, cap);
            using var devCache = new DeviceKvCache(dev, batch, cap);
            for (int i = 0; i < steps.Length; i++)
            {
                var (tokens, mask, newTokens, lastOnly) = steps[i];
                int rows = lastOnly ? batch : batch * newTokens;
                var expected = new float[rows * config.VocabSize];
                var actual = new float[expected.Length];
                cpu.ForwardCached(tokens, mask, newTokens, cache, expected, lastOnly, useAdapter);
                dev.ForwardCached(tokens, mask, newTokens, devCache, actual, lastOnly, useAdapter);
                AssertClose(actual, expected, 1e-4, $"logits (adapter {useAdapter}) at cache length {cache.Length}");
                if (useAdapter) withAdapter.Add(expected);
                else AssertDiffer(withAdapter[i], expected, $"the adapter changes the logits of step {i}");
            }
        }
    }

    [TestCaseSource(nameof(AdapterModels))]
    public void GenerationWithAnAdapterPicksTheCpuTokens(TransformerConfig config, string[] targets)
    {
        var (cpu, dev) = AdaptedPair(config, targets);
        using var _ = dev;
        using var onDevice = new DeviceGenerator(dev);
        var onCpu = new Generator(cpu);
        int[][] prompts = [[3, 5, 7], [2, 4]];
        foreach (var options in new[]
        {
            new GenerationOptions(MaxNewTokens: 5, Temperature: 0f),
            new GenerationOptions(MaxNewTokens: 5, Temperature: 0f, UseAdapter: false),
            new GenerationOptions(MaxNewTokens: 5, Temperature: 1f, Seed: 7),
            new GenerationOptions(MaxNewTokens: 4, Temperature: 0.8f, TopK: 4, TopP: 0.9f, Seed: 3, EosTokenId: 1),
        })
        {
            var expected = onCpu.Generate(prompts, options);
            var actual = onDevice.Generate(prompts, options);
            Assert.That(actual.Tokens, Is.EqualTo(expected.Tokens), $"tokens with {options}");
            Assert.That(actual.Mask, Is.EqualTo(expected.Mask), $"mask with {options}");
            Assert.That(actual.Lengths, Is.EqualTo(expected.Lengths), $"lengths with {options}");
            AssertClose(actual.LogProbs, expected.LogProbs, 1e-4, $"log-probabilities with {options}");
        }

        var greedy = new GenerationOptions(MaxNewTokens: 5, Temperature: 0f);
        var adapted = onCpu.Generate(prompts, greedy).LogProbs;
        var reference = onCpu.Generate(prompts, greedy with { UseAdapter = false }).LogProbs;
        AssertDiffer(adapted, reference, "the adapter changes what greedy decoding sees");
    }

    // The ilgpu-cpu device picks tokens itself; the host loop's stop check must end rows on any listed id there too.
    [TestCaseSource(nameof(Models))]
    public void GenerationStopsAtAnyIdOfAnEosListAsOnTheCpu(TransformerConfig config)
    {
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(11, std: 0.3f);
        using var dev = new DeviceTransformer(Device, config);
        dev.UploadParameters(cpu.Parameters);
        using var onDevice = new DeviceGenerator(dev);
        var onCpu = new Generator(cpu);
        int[][] prompts = [[3, 5, 7], [2, 4]];
        var free = onDevice.Generate(prompts, new GenerationOptions(MaxNewTokens: 5, Temperature: 0f));
        int[] stops = [Rlhf.Tests.Model.GenerationTests.NeverGenerated(free, config.VocabSize), free.Tokens[1]];
        var greedy = new GenerationOptions(MaxNewTokens: 5, Temperature: 0f, PadTokenId: 0, EosTokenIds: stops);
        var stopped = onDevice.Generate(prompts, greedy);
        Assert.That(stopped.Lengths[0], Is.LessThanOrEqualTo(2));
        Rlhf.Tests.Model.GenerationTests.AssertCutAtFirstStop(free, stopped, stops, pad: 0);
        foreach (var options in new[] { greedy, greedy with { Temperature = 0.8f, TopK = 4, TopP = 0.9f, Seed = 3 } })
        {
            var expected = onCpu.Generate(prompts, options);
            var actual = onDevice.Generate(prompts, options);
            Assert.That(actual.Tokens, Is.EqualTo(expected.Tokens), $"tokens with {options}");
            Assert.That(actual.Mask, Is.EqualTo(expected.Mask), $"mask with {options}");
            Assert.That(actual.Lengths, Is.EqualTo(expected.Lengths), $"lengths with {options}");
        }
    }

    internal static void AssertDiffer(float[] a, float[] b, string what)
    {
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        Assert.That(max, Is.GreaterThan(1e-2), what);
    }
}
