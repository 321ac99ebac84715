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
        var one = TransformerConfig.Llama(32000, 4096, 1 << 20, 1, 1 << 12, 1 << 10, 1 << 22);
        double first = ParameterLayout.CountParameters(one), perBlock = ParameterLayout.CountParameters(one with { LayerCount = 2 }) - first;
        Assert.That(ParameterLayout.CountParameters(one with { LayerCount = int.MaxValue }), Is.EqualTo(first + (int.MaxValue - 1.0) * perBlock));

        // 3·d of GPT-2's fused c_attn no longer fits an int: counted as the product it is, not a wrapped negative.
        const int d = 1 << 30;
        Assert.That(ParameterLayout.CountParameters(TransformerConfig.Gpt2(2, 2, d, 1, 1 << 24)), Is.GreaterThan(3.0 * d * d));
    }
}
