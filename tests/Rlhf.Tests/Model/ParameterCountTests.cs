using Rlhf.Model;

namespace Rlhf.Tests.Model;

/// <summary>
/// <see cref="ParameterLayout.CountParameters"/> is what loaders check a file against before building the layout: it must
/// be the built layout's size for every option the layout has, and stay a number (no allocation, no wrap) for absurd configs.
/// </summary>
public class ParameterCountTests
{
    private static IEnumerable<TestCaseData> Configs()
    {
        // GPT-2 always has biases, a tied head and learned positions; what varies is the widths, context and depth.
        yield return new TestCaseData(TransformerConfig.Gpt2(50, 16, 12, 1, 3)).SetName("Gpt2_OneLayer");
        yield return new TestCaseData(TransformerConfig.Gpt2(37, 40, 8, 3, 2) with { HiddenDim = 20 }).SetName("Gpt2_ThreeLayers_MlpNot4d");
        // Llama has no biases; its head may be tied, and keys/values may have fewer heads (GQA, MQA) than queries.
        yield return new TestCaseData(TransformerConfig.Llama(41, 16, 16, 2, 4, 4, 24)).SetName("Llama_FullHeads_Untied");
        yield return new TestCaseData(TransformerConfig.Llama(41, 16, 16, 2, 4, 2, 24)).SetName("Llama_Gqa_Untied");
        yield return new TestCaseData(TransformerConfig.Llama(41, 16, 16, 3, 4, 2, 24, tiedEmbeddings: true)).SetName("Llama_Gqa_Tied");
        yield return new TestCaseData(TransformerConfig.Llama(29, 8, 32, 1, 8, 1, 40, tiedEmbeddings: true)).SetName("Llama_Mqa_Tied");
        yield return new TestCaseData(TransformerConfig.Llama(29, 8, 32, 2, 8, 1, 40)).SetName("Llama_Mqa_Untied");
    }

    [TestCaseSource(nameof(Configs))]
    public void Count_IsTheBuiltLayoutsSize(TransformerConfig config)
    {
        var layout = new ParameterLayout(config);
        Assert.That(ParameterLayout.CountParameters(config), Is.EqualTo(layout.TotalLength));
        Assert.That(layout.Tensors.Sum(t => t.Length), Is.EqualTo(layout.TotalLength), "a tied head is counted once");
    }

    [Test]
    public void AbsurdConfig_IsCountedExactly_WithoutBuildingIt()
    {
        // Against the closed form (written here, not derived from CountParameters): Llama has per layer two norms,
        // q and o (d·d each), k and v (d·kv each, kv = d·kvHeads/heads) and three MLP matrices (d·f); then the embedding,
        // the final norm and an untied head.
        const double v = 32000, d = 1 << 20, f = 1 << 22, kv = d * (1 << 10) / (1 << 12);
        double PerLayer() => 2 * d + 2 * d * d + 2 * d * kv + 3 * d * f;
        var huge = TransformerConfig.Llama(32000, 4096, 1 << 20, int.MaxValue, 1 << 12, 1 << 10, 1 << 22);
        Assert.That(ParameterLayout.CountParameters(huge), Is.EqualTo(v * d + d + v * d + int.MaxValue * PerLayer()).Within(1e-12).Percent);

        // GPT-2 per layer: two layer norms (weight and bias), the fused c_attn (d·3d + 3d), c_proj (d·d + d), the MLP
        // (d·h + h, h·d + d); then token and position embeddings and the final norm (the head is tied). 3·d no longer
        // fits an int here.
        const double g = 1 << 30, h = int.MaxValue, context = 2, vocab = 2;
        double gpt2 = vocab * g + context * g + 2 * g + 4 * g + (3 * g * g + 3 * g) + (g * g + g) + (g * h + h) + (h * g + g);
        Assert.That(ParameterLayout.CountParameters(TransformerConfig.Gpt2(2, 2, 1 << 30, 1, 1 << 24) with { HiddenDim = int.MaxValue }),
            Is.EqualTo(gpt2).Within(1e-12).Percent);
    }
}
