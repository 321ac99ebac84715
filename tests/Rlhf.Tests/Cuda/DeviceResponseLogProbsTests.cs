using Rlhf.Compute;
using Rlhf.Model;
using Rlhf.Ppo;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Cuda;

/// <summary>The evaluation's response log-probabilities on the device against the CPU engine's.</summary>
[NonParallelizable]
public class DeviceResponseLogProbsTests : DeviceTestBase
{
    [TestCase(1f)]
    [TestCase(0.7f)]
    public void MatchTheCpuWithAndWithoutTheAdapter(float temperature)
    {
        var (cpu, dev) = AdaptedPair(TinyLlama(), ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"]);
        using var _ = dev;
        using var onDevice = new DeviceResponseLogProbs(dev);
        var onCpu = new ResponseLogProbs(cpu);
        // Row 1's prompt is left-padded and its response ends early (masked positions are scored too; callers skip them).
        var result = new Generator(cpu).Generate([[3, 5, 7], [2, 4]], new GenerationOptions(MaxNewTokens: 4, Temperature: 1f, Seed: 5, EosTokenId: 9));
        var byAdapter = new Dictionary<bool, float[]>();
        foreach (bool useAdapter in new[] { true, false })
        {
            var expected = new float[result.Batch * result.MaxNewTokens];
            var actual = new float[expected.Length];
            onCpu.LogProbs(result, temperature, useAdapter, expected);
            onDevice.LogProbs(result, temperature, useAdapter, actual);
            AssertClose(actual, expected, 1e-4, $"log-probs (adapter {useAdapter}, T = {temperature})");
            Assert.That(expected, Has.All.LessThan(0f).And.All.GreaterThan(-20f), "real log-probabilities");
            byAdapter[useAdapter] = actual;
        }

        DeviceDecodingTests.AssertDiffer(byAdapter[true], byAdapter[false], "the adapter changes the log-probs");
        Assert.Throws<ArgumentException>(() => onDevice.LogProbs(result, 1f, true, new float[3]), "destination of the wrong length");
    }

    [Test]
    public void EvaluationKlOnTheDeviceMatchesTheCpu()
    {
        var model = Rlhf.Tests.Ppo.PpoTestSupport.TinyByteModel();
        var lora = model.AttachAdapter(new LoraConfig(2, 4f, ["c_attn", "c_fc"]), 4);
        Random(lora.Parameters.Length, 9, 0.5f).CopyTo(lora.Parameters, 0);
        using var twin = new DeviceTransformer(Device, model.Config);
        twin.UploadParameters(model.Parameters);
        twin.AttachAdapter(lora);
        using var onDevice = new DeviceResponseLogProbs(twin);
        var tokenizer = new Rlhf.Tokenizers.ByteTokenizer();
        var scorer = new VowelShare();
        var options = new EvalOptions { MaxNewTokens = 5, BatchSize = 2, Seed = 4 };
        string[] prompts = ["ab", "cde", "f"];
        var onCpuResult = PpoEvaluation.Evaluate("after", model, true, tokenizer, prompts, scorer, null, options);
        var onDeviceResult = PpoEvaluation.Evaluate("after", model, true, tokenizer, prompts, scorer, null, options, responseLogProbs: onDevice);
        Assert.That(onCpuResult.MeanKl, Is.Not.EqualTo(0.0), "the adapter changes the policy");
        Assert.That(onDeviceResult.MeanKl, Is.EqualTo(onCpuResult.MeanKl).Within(1e-4 * Math.Max(1, Math.Abs(onCpuResult.MeanKl))));
        Assert.That(onDeviceResult.MeanToxicity, Is.EqualTo(onCpuResult.MeanToxicity), "the same responses");
        Assert.Throws<ArgumentException>(() => PpoEvaluation.Evaluate("after", model, true, tokenizer, prompts, scorer, null, options, reference: model, responseLogProbs: onDevice),
            "a response scorer compares with the adapter-off base, not a separate reference");
    }

    private sealed class VowelShare : IProbabilityScorer
    {
        public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
        {
            for (int i = 0; i < texts.Count; i++)
                probabilities[i] = texts[i].Length == 0 ? 0f : texts[i].Count(c => "aeiou".Contains(c)) / (float)texts[i].Length;
        }
    }
}
