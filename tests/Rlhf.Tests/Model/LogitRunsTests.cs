using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

/// <summary>Logits and their gradient for several strided runs of rows (one per sequence) in one product.</summary>
public class LogitRunsTests
{
    private const int Batch = 3, Seq = 8, Start = 2, Count = 4;

    [TestCase(false)]
    [TestCase(true)]
    public void RunsEqualOneCallPerRun(bool lora)
    {
        var (oneCall, perRun) = (NewModel(lora), NewModel(lora));
        int v = oneCall.Config.VocabSize;
        var tokens = new int[Batch * Seq];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = (i * 7 + 3) % v;
        var mask = new float[Batch * Seq];
        Array.Fill(mask, 1f);
        var dLogits = RandomFloats(Batch * Count * v, 5);
        var runs = new float[Batch * Count * v];
        var dHidden = new float[Batch * Seq * oneCall.Config.ModelDim];

        oneCall.Forward(tokens, mask, Batch, Seq, computeLogits: false, useAdapter: lora);
        oneCall.ZeroGradients();
        oneCall.ComputeLogits(Start, Count, Batch, Seq, runs);
        oneCall.AccumulateLogitsGradient(Start, Count, Batch, Seq, dLogits);
        oneCall.Backward(default, dHidden);

        perRun.Forward(tokens, mask, Batch, Seq, computeLogits: false, useAdapter: lora);
        perRun.ZeroGradients();
        var chunk = new float[Count * v];
        for (int b = 0; b < Batch; b++)
        {
            perRun.ComputeLogits(b * Seq + Start, Count, chunk);
            AssertClose(runs.AsSpan(b * Count * v, Count * v), Array.ConvertAll(chunk, x => (double)x), 1e-6, $"logits of run {b}");
            perRun.AccumulateLogitsGradient(b * Seq + Start, Count, dLogits.AsSpan(b * Count * v, Count * v));
        }

        perRun.Backward(default, dHidden);
        if (lora)
            AssertClose(oneCall.Adapter!.Gradients, Array.ConvertAll(perRun.Adapter!.Gradients, x => (double)x), 1e-5, "adapter gradients");
        else
            AssertClose(oneCall.Gradients, Array.ConvertAll(perRun.Gradients, x => (double)x), 1e-5, "gradients");
    }

    [Test]
    public void OverlappingOrOutOfRangeRunsAreRejected()
    {
        var model = NewModel(lora: false);
        var tokens = new int[Batch * Seq];
        var mask = new float[Batch * Seq];
        Array.Fill(mask, 1f);
        model.Forward(tokens, mask, Batch, Seq, computeLogits: false);
        int v = model.Config.VocabSize;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => model.ComputeLogits(0, Count, Batch, Count - 1, new float[Batch * Count * v]));
        Assert.That(ex!.ParamName, Is.EqualTo("stride"));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ComputeLogits(Seq - 1, Count, Batch, Seq, new float[Batch * Count * v]));
        var bad = Assert.Throws<ArgumentException>(() => model.AccumulateLogitsGradient(Start, Count, Batch, Seq, new float[v]));
        Assert.That(bad!.ParamName, Is.EqualTo("dLogits"));
    }

    private static TransformerModel NewModel(bool lora)
    {
        var model = new TransformerModel(TransformerConfig.Gpt2(vocabSize: 37, contextLength: Seq, modelDim: 16, layerCount: 2, headCount: 2));
        model.InitializeRandom(3);
        if (lora) model.AttachAdapter(LoraConfig.Default(ModelFamily.Gpt2, rank: 2) with { TargetModules = ["c_attn", "c_proj"] }, 4);
        if (lora) model.Adapter!.Parameters.AsSpan().Fill(0.05f);
        return model;
    }
}
