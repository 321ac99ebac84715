using Rlhf.Model;

namespace Rlhf.Tests.Model;

public class ConfigAndLayoutTests
{
    [Test]
    public void Gpt2LayoutUsesHfNamesAndConv1DShapes()
    {
        var c = TransformerConfig.Gpt2(50, 16, 12, 3, 3);
        var layout = new ParameterLayout(c);
        int d = 12, perLayer = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
        Assert.That(layout.TotalLength, Is.EqualTo(50 * d + 16 * d + 3 * perLayer + 2 * d));
        Assert.That(layout.Get("transformer.h.2.attn.c_attn.weight").Shape, Is.EqualTo(new[] { d, 3 * d }));
        Assert.That(layout.Get("transformer.h.0.mlp.c_proj.weight").Shape, Is.EqualTo(new[] { 4 * d, d }));
        Assert.That(layout.LmHead, Is.EqualTo(layout.Get("transformer.wte.weight").Offset));
        Assert.That(layout.TryGet("lm_head.weight", out _), Is.False);
        int end = 0;
        foreach (var t in layout.Tensors)
        {
            Assert.That(t.Offset, Is.EqualTo(end), t.Name + " is contiguous");
            end += t.Length;
        }

        var ex = Assert.Throws<ArgumentException>(() => layout.Get("transformer.h.3.ln_1.weight"));
        Assert.That(ex!.Message, Does.Contain("transformer.h.3.ln_1.weight"));
    }

    [Test]
    public void LlamaLayoutKeepsFusedGroupsAdjacent()
    {
        var c = TransformerConfig.Llama(40, 16, 16, 2, 4, 2, 24);
        var layout = new ParameterLayout(c);
        var q = layout.Get("model.layers.1.self_attn.q_proj.weight");
        var k = layout.Get("model.layers.1.self_attn.k_proj.weight");
        var v = layout.Get("model.layers.1.self_attn.v_proj.weight");
        Assert.That(q.Shape, Is.EqualTo(new[] { 16, 16 }));
        Assert.That(k.Shape, Is.EqualTo(new[] { 8, 16 }));
        Assert.That(k.Offset, Is.EqualTo(q.Offset + q.Length));
        Assert.That(v.Offset, Is.EqualTo(k.Offset + k.Length));
        Assert.That(layout.Get("model.layers.0.mlp.up_proj.weight").Offset, Is.EqualTo(layout.Get("model.layers.0.mlp.gate_proj.weight").Offset + 24 * 16));
        Assert.That(layout.Get("lm_head.weight").Shape, Is.EqualTo(new[] { 40, 16 }));
        var tied = new ParameterLayout(c with { TiedEmbeddings = true });
        Assert.That(tied.TryGet("lm_head.weight", out _), Is.False);
        Assert.That(tied.TotalLength, Is.EqualTo(layout.TotalLength - 40 * 16));
    }

    [Test]
    public void ValidationNamesTheBadField()
    {
        var gpt = TransformerConfig.Gpt2(50, 16, 12, 2, 3);
        Assert.That(Assert.Throws<ArgumentException>(() => (gpt with { KvHeadCount = 1 }).Validate())!.ParamName, Is.EqualTo("KvHeadCount"));
        Assert.That(Assert.Throws<ArgumentException>(() => (gpt with { HeadCount = 5, KvHeadCount = 5 }).Validate())!.ParamName, Is.EqualTo("HeadCount"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => (gpt with { VocabSize = 0 }).Validate())!.ParamName, Is.EqualTo("VocabSize"));
        Assert.That(Assert.Throws<ArgumentException>(() => (gpt with { TiedEmbeddings = false }).Validate())!.ParamName, Is.EqualTo("TiedEmbeddings"));
        var llama = TransformerConfig.Llama(50, 16, 12, 2, 4, 2, 24);
        Assert.That(Assert.Throws<ArgumentException>(() => (llama with { KvHeadCount = 3 }).Validate())!.ParamName, Is.EqualTo("KvHeadCount"));
        Assert.That(Assert.Throws<ArgumentException>(() => (llama with { HeadCount = 12, KvHeadCount = 12 }).Validate())!.ParamName, Is.EqualTo("ModelDim"), "odd head dim cannot rotate");
        Assert.That(Assert.Throws<ArgumentException>(() => (llama with { UseBias = true }).Validate())!.ParamName, Is.EqualTo("UseBias"));
        Assert.That(Assert.Throws<ArgumentException>(() => (llama with { NormEps = 0f }).Validate())!.ParamName, Is.EqualTo("NormEps"));
    }

    [Test]
    public void ModelRejectsBadInputs()
    {
        var m = new TransformerModel(TransformerConfig.Gpt2(10, 4, 4, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Forward(new int[5], new float[5], 1, 5));
        Assert.Throws<ArgumentException>(() => m.Forward(new int[3], new float[4], 1, 4));
        var ex = Assert.Throws<ArgumentException>(() => m.Forward(new int[4], [1, 1, 0.5f, 1], 1, 4));
        Assert.That(ex!.Message, Does.Contain("mask[2]"));
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => m.Forward([0, 1, 10, 2], [1, 1, 1, 1], 1, 4));
        Assert.That(ex2!.Message, Does.Contain("index 2"));
        Assert.Throws<ArgumentException>(() => m.LoadTensor("transformer.wte.weight", new float[3]));
        Assert.Throws<InvalidOperationException>(() => new TransformerModel(TransformerConfig.Gpt2(10, 4, 4, 1, 1)).Backward(default, default));
    }

    [Test]
    public void ActivationsAreReusedAcrossShapes()
    {
        var c = TransformerConfig.Llama(11, 8, 8, 2, 4, 2, 12);
        var m = new TransformerModel(c);
        m.InitializeRandom(3, std: 0.3f);
        int[] small = [1, 2, 3, 4, 5, 6];
        float[] ones = [1, 1, 1, 1, 1, 1];
        var d = new float[6 * c.VocabSize];
        d[5] = 1f;
        m.Forward(small, ones, 2, 3);
        var first = m.Logits.ToArray();
        m.Backward(d, default);
        var g1 = m.Gradients.ToArray();
        m.Forward(new int[24], new float[24], 3, 8);
        m.Forward(small, ones, 2, 3);
        Assert.That(m.Logits.ToArray(), Is.EqualTo(first));
        m.ZeroGradients();
        m.Backward(d, default);
        Assert.That(m.Gradients, Is.EqualTo(g1));
    }
}
