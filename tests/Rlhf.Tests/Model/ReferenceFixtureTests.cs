using Rlhf.Model;
using Rlhf.Tests.Support;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

/// <summary>Forward, loss and gradients against the PyTorch models in tests/reference/gpt2.py and llama.py.</summary>
public class ReferenceFixtureTests
{
    private const double Tol = 1e-4;

    private static (TransformerModel Model, float Loss, float[] DLogits) Run(Fixture f, TransformerConfig config, bool lora)
    {
        var model = new TransformerModel(config);
        LoadParameters(model, f);
        if (lora)
        {
            var a = model.AttachAdapter(new LoraConfig(2, 4f, ["q_proj", "v_proj"]), seed: 1);
            foreach (var t in a.Tensors) a.LoadTensor(t.Name, f["lora." + t.Name].AsFloats());
        }

        var tokens = f["tokens"].AsInts();
        var mask = f["mask"].AsFloats();
        int b = f["tokens"].Shape[0], s = f["tokens"].Shape[1];
        var targets = new int[b * s];
        var weights = new float[b * s];
        CausalLmLoss.ShiftTargets(tokens, mask, f["loss_mask"].AsFloats(), targets, weights, b, s);
        Assert.That(targets, Is.EqualTo(f["targets"].AsInts()), "targets");
        Assert.That(weights, Is.EqualTo(f["weights"].AsFloats()), "weights");
        model.Forward(tokens, mask, b, s);
        var dlogits = new float[b * s * config.VocabSize];
        float loss = CausalLmLoss.Forward(model.Logits, targets, weights, dlogits, b * s, config.VocabSize);
        model.ZeroGradients();
        model.Backward(dlogits, default);
        return (model, loss, dlogits);
    }

    [Test]
    public void Gpt2MatchesTorch()
    {
        var f = Fixture.Load("model_gpt2");
        var (model, loss, _) = Run(f, TransformerConfig.Gpt2(24, 8, 8, 2, 2), lora: false);
        AssertClose(model.Logits, f["logits"].Data, Tol, "logits");
        Assert.That(loss, Is.EqualTo(f["loss"].Scalar).Within(Tol * Math.Abs(f["loss"].Scalar)));
        foreach (var t in model.Layout.Tensors)
            AssertClose(model.Gradients.AsSpan(t.Offset, t.Length), f["grad." + t.Name].Data, Tol, "grad " + t.Name);
    }

    [Test]
    public void ChunkedLogitsAndGradientsEqualTheFullBuffers()
    {
        var f = Fixture.Load("model_llama");
        var config = TransformerConfig.Llama(24, 8, 16, 2, 4, 2, 16);
        var (full, _, dlogits) = Run(f, config, lora: false);
        var model = new TransformerModel(config);
        LoadParameters(model, f);
        int b = f["tokens"].Shape[0], s = f["tokens"].Shape[1], v = config.VocabSize;
        var mask = f["mask"].AsFloats();
        model.Forward(f["tokens"].AsInts(), mask, b, s, computeLogits: false);
        model.ZeroGradients();
        var dHidden = new float[b * s * config.ModelDim];
        for (int start = 0; start < b * s; start += 7)
        {
            int count = Math.Min(7, b * s - start);
            var chunk = new float[count * v];
            model.ComputeLogits(start, count, chunk);
            AssertClose(chunk, Array.ConvertAll(full.Logits.Slice(start * v, count * v).ToArray(), x => (double)x), 1e-6, "logits chunk");
            model.AccumulateLogitsGradient(start, count, dlogits.AsSpan(start * v, count * v));
        }

        model.Backward(default, dHidden);
        AssertClose(model.Gradients, Array.ConvertAll(full.Gradients, x => (double)x), 1e-5, "gradients");
    }

    [Test]
    public void LlamaWithGroupedQueryAttentionMatchesTorch()
    {
        var f = Fixture.Load("model_llama");
        var (model, loss, _) = Run(f, TransformerConfig.Llama(24, 8, 16, 2, 4, 2, 16), lora: false);
        AssertClose(model.Logits, f["logits"].Data, Tol, "logits");
        Assert.That(loss, Is.EqualTo(f["loss"].Scalar).Within(Tol * Math.Abs(f["loss"].Scalar)));
        foreach (var t in model.Layout.Tensors)
            AssertClose(model.Gradients.AsSpan(t.Offset, t.Length), f["grad." + t.Name].Data, Tol, "grad " + t.Name);
    }

    [Test]
    public void LlamaLoraOnQAndVMatchesPeftAndFreezesBase()
    {
        var f = Fixture.Load("model_llama_lora");
        var (model, loss, _) = Run(f, TransformerConfig.Llama(24, 8, 16, 2, 4, 2, 16), lora: true);
        AssertClose(model.Logits, f["logits"].Data, Tol, "logits");
        Assert.That(loss, Is.EqualTo(f["loss"].Scalar).Within(Tol * Math.Abs(f["loss"].Scalar)));
        var a = model.Adapter!;
        Assert.That(a.Slots, Has.Count.EqualTo(4));
        foreach (var t in a.Tensors)
            AssertClose(a.Gradients.AsSpan(t.Offset, t.Length), f["lora_grad." + t.Name].Data, Tol, "lora grad " + t.Name);
        Assert.That(model.Gradients.All(g => g == 0f), Is.True, "base gradients must stay zero while the adapter is attached");
    }
}
