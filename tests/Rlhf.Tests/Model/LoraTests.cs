using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

public class LoraTests
{
    private static readonly int[] Tokens = [1, 4, 2, 7, 3, 0, 0, 5, 9, 2];
    private static readonly float[] Mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1];

    private static TransformerModel Model(TransformerConfig c)
    {
        var m = new TransformerModel(c);
        m.InitializeRandom(7, std: 0.3f);
        return m;
    }

    private static void RandomizeB(LoraAdapter a)
    {
        var rng = new Xoshiro256(99);
        foreach (var s in a.Slots)
            for (int i = 0; i < s.Out * a.Rank; i++) a.Parameters[s.BOffset + i] = (float)(0.3 * rng.NextGaussian());
    }

    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(TinyGpt2(), new[] { "c_attn", "c_proj", "c_fc" }).SetName("Gpt2_AllProjections");
        yield return new TestCaseData(TinyLlama(), new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" }).SetName("Llama_AllProjections");
        yield return new TestCaseData(TinyLlama(), new[] { "q_proj", "v_proj" }).SetName("Llama_QV");
    }

    [TestCaseSource(nameof(Cases))]
    public void DisabledAdapterIsTheBaseModelAndMergedEqualsUnmerged(TransformerConfig c, string[] targets)
    {
        var model = Model(c);
        model.Forward(Tokens, Mask, 2, 5);
        var baseLogits = model.Logits.ToArray();

        var a = model.AttachAdapter(new LoraConfig(2, 3f, targets), seed: 5);
        model.Forward(Tokens, Mask, 2, 5);
        Assert.That(model.Logits.ToArray(), Is.EqualTo(baseLogits), "B = 0 at init: the adapter starts as a no-op");

        RandomizeB(a);
        model.Forward(Tokens, Mask, 2, 5, useAdapter: false);
        Assert.That(model.Logits.ToArray(), Is.EqualTo(baseLogits), "adapter disabled == base");
        model.Forward(Tokens, Mask, 2, 5);
        var adapted = model.Logits.ToArray();
        Assert.That(MaxAbsDiff(adapted, baseLogits), Is.GreaterThan(1e-3), "the adapter changes the output");

        model.MergeAdapter();
        Assert.That(model.Adapter, Is.Null);
        model.Forward(Tokens, Mask, 2, 5);
        Assert.That(MaxAbsDiff(model.Logits.ToArray(), adapted), Is.LessThan(1e-4), "merged == unmerged");
    }

    [Test]
    public void AdapterGradientsMatchFiniteDifferencesAndBaseStaysFrozen()
    {
        var model = Model(TinyGpt2());
        var a = model.AttachAdapter(new LoraConfig(2, 4f, ["c_attn", "mlp.c_proj"]), seed: 3);
        RandomizeB(a);
        Assert.That(a.Slots, Has.Count.EqualTo(4));
        var targets = new int[10];
        var w = new float[10];
        CausalLmLoss.ShiftTargets(Tokens, Mask, default, targets, w, 2, 5);
        var dl = new float[10 * model.Config.VocabSize];
        double Loss()
        {
            model.Forward(Tokens, Mask, 2, 5);
            return CausalLmLoss.Forward(model.Logits, targets, w, default, 10, model.Config.VocabSize);
        }

        model.Forward(Tokens, Mask, 2, 5);
        CausalLmLoss.Forward(model.Logits, targets, w, dl, 10, model.Config.VocabSize);
        model.ZeroGradients();
        model.Backward(dl, default);
        Assert.That(model.Gradients.All(g => g == 0f), Is.True);
        var grads = a.Gradients.ToArray();
        var pick = new int[24];
        var rng = new Xoshiro256(11);
        for (int i = 0; i < pick.Length; i++) pick[i] = (int)(rng.NextUInt64() % (ulong)grads.Length);
        FiniteDifference.Check(a.Parameters, grads, Loss, "lora", h: 1e-2, tol: 1e-2, indices: pick);
    }

    [Test]
    public void TargetsFollowPeftNamesAndUnknownTargetsThrow()
    {
        var model = Model(TinyLlama());
        var a = model.AttachAdapter(LoraConfig.Default(ModelFamily.Llama, rank: 4, alpha: 8f), seed: 1);
        Assert.That(a.Tensors.Select(t => t.Name), Does.Contain("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"));
        Assert.That(a.Get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape, Is.EqualTo(new[] { 4, 8 }));
        Assert.That(a.Scale, Is.EqualTo(2f));
        float bound = 1f / MathF.Sqrt(8);
        var s0 = a.Slots[0];
        Assert.That(a.Parameters.AsSpan(s0.AOffset, 4 * 8).ToArray().All(v => MathF.Abs(v) <= bound && v != 0f), Is.True);
        Assert.That(a.Parameters.AsSpan(s0.BOffset, s0.Out * 4).ToArray().All(v => v == 0f), Is.True);
        model.DetachAdapter();
        var ex = Assert.Throws<ArgumentException>(() => model.AttachAdapter(new LoraConfig(2, 4f, ["c_attn"]), 1));
        Assert.That(ex!.Message, Does.Contain("c_attn"));
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
