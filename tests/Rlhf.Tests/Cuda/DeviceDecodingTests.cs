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
}
