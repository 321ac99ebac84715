using Rlhf.Model;
using Rlhf.Training;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

public class TrainingTests
{
    private static TokenBatch Batch(int[] tokens, float[] mask, int b, int t, float[]? lossMask = null) => new(tokens, mask, lossMask, b, t);

    [Test]
    public void AdamWFirstStepMovesBySignedLearningRateAndDecays()
    {
        var p = new float[] { 1f, -2f, 3f, 0.5f };
        var g = new float[] { 0.1f, -5f, 1e-3f, 0f };
        var opt = new AdamW(weightDecay: 0.1f);
        opt.Step(p, g, 0.01f);
        // Bias-corrected m̂/√v̂ = sign(g) on step 1 (|g| ≫ eps); decoupled decay multiplies by 1 − lr·wd.
        double[] expected = [1 * 0.999 - 0.01, -2 * 0.999 + 0.01, 3 * 0.999 - 0.01 * (1e-3 / (1e-3 + 1e-8)), 0.5 * 0.999];
        for (int i = 0; i < 4; i++) Assert.That(p[i], Is.EqualTo(expected[i]).Within(1e-6));
        Assert.That(opt.StepCount, Is.EqualTo(1));
        Assert.Throws<ArgumentException>(() => opt.Step(new float[3], new float[3], 0.01f));
    }

    [Test]
    public void WeightDecayMaskSparesBiasesAndNorms()
    {
        var layout = new ParameterLayout(TinyGpt2());
        var mask = layout.WeightDecayMask();
        Assert.That(mask[layout.Get("transformer.h.0.ln_1.weight").Offset], Is.Zero);
        Assert.That(mask[layout.Get("transformer.h.1.mlp.c_fc.bias").Offset], Is.Zero);
        Assert.That(mask[layout.Get("transformer.h.1.mlp.c_fc.weight").Offset], Is.EqualTo(1f));
        var p = new float[layout.TotalLength];
        Array.Fill(p, 1f);
        new AdamW(weightDecay: 0.5f, decayMask: mask).Step(p, new float[p.Length], 0.1f);
        Assert.That(p[layout.Get("transformer.h.0.ln_1.weight").Offset], Is.EqualTo(1f));
        Assert.That(p[layout.Get("transformer.wte.weight").Offset], Is.EqualTo(0.95f).Within(1e-7));
    }

    [Test]
    public void AdamWSecondStepFollowsTheMomentRecurrences()
    {
        var p = new float[] { 0f };
        var opt = new AdamW(beta1: 0.9f, beta2: 0.99f, eps: 1e-8f);
        opt.Step(p, [1f], 0.1f);
        opt.Step(p, [-0.5f], 0.1f);
        double m = 0.9 * 0.1 + 0.1 * -0.5, v = 0.99 * 0.01 + 0.01 * 0.25;
        double step2 = 0.1 * (m / (1 - 0.81)) / (Math.Sqrt(v / (1 - 0.9801)) + 1e-8);
        Assert.That(p[0], Is.EqualTo(-0.1 - step2).Within(1e-6));
    }

    [Test]
    public void ClippingScalesToMaxNormAcrossBuffers()
    {
        var a = new float[] { 3f, 0f };
        var b = new float[] { 4f };
        double norm = GradientClipping.ClipGlobalNorm([a, b], 1f);
        Assert.That(norm, Is.EqualTo(5.0).Within(1e-9));
        Assert.That(Math.Sqrt(a[0] * a[0] + b[0] * b[0]), Is.EqualTo(1.0).Within(1e-5));
        Assert.That(GradientClipping.ClipGlobalNorm([a, b], 10f), Is.EqualTo(1.0).Within(1e-5));
        Assert.That(a[0], Is.EqualTo(0.6f).Within(1e-6), "below the limit nothing changes");
    }

    [Test]
    public void SchedulesFollowHuggingFace()
    {
        var cos = new LearningRateSchedule(1f, 10, 110, DecayKind.Cosine);
        Assert.That(cos.At(0), Is.EqualTo(0f));
        Assert.That(cos.At(5), Is.EqualTo(0.5f).Within(1e-7));
        Assert.That(cos.At(10), Is.EqualTo(1f).Within(1e-7));
        Assert.That(cos.At(60), Is.EqualTo(0.5f).Within(1e-6));
        Assert.That(cos.At(110), Is.EqualTo(0f).Within(1e-7));
        var lin = new LearningRateSchedule(2f, 0, 100, DecayKind.Linear);
        Assert.That(lin.At(25), Is.EqualTo(1.5f).Within(1e-6));
        Assert.That(lin.At(500), Is.EqualTo(0f));
        Assert.That(new LearningRateSchedule(3f, 2, 0, DecayKind.Constant).At(50), Is.EqualTo(3f));
    }

    [Test]
    public void TrainerOverfitsAFixedBatch()
    {
        foreach (var c in new[] { TinyGpt2(), TinyLlama() })
        {
            var model = new TransformerModel(c);
            model.InitializeRandom(1);
            var trainer = new CausalLmTrainer(model, new LearningRateSchedule(1e-2f, 2, 60, DecayKind.Cosine), maxGradNorm: 1f);
            var batch = Batch([1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 1], [1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1], 2, 6);
            float first = trainer.Step([batch]).Loss, last = 0;
            for (int i = 0; i < 59; i++) last = trainer.Step([batch]).Loss;
            Assert.That(first, Is.EqualTo(MathF.Log(c.VocabSize)).Within(0.2), c.Family + " starts near uniform");
            Assert.That(last, Is.LessThan(0.3f * first), c.Family + " loss falls");
        }
    }

    [Test]
    public void GradientAccumulationEqualsOneLargeBatch()
    {
        var c = TinyLlama();
        int[] tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        float[] mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        var schedule = new LearningRateSchedule(1e-2f, 0, 10, DecayKind.Constant);
        var one = new TransformerModel(c);
        one.InitializeRandom(3);
        var two = new TransformerModel(c);
        two.InitializeRandom(3);
        var r1 = new CausalLmTrainer(one, schedule, maxGradNorm: 100f).Step([Batch(tokens, mask, 2, 5)]);
        var r2 = new CausalLmTrainer(two, schedule, maxGradNorm: 100f).Step([Batch(tokens[..5], mask[..5], 1, 5), Batch(tokens[5..], mask[5..], 1, 5)]);
        Assert.That(r2.Loss, Is.EqualTo(r1.Loss).Within(1e-5));
        Assert.That(r2.GradNorm, Is.EqualTo(r1.GradNorm).Within(1e-5 * r1.GradNorm));
        for (int i = 0; i < one.Parameters.Length; i++) Assert.That(two.Parameters[i], Is.EqualTo(one.Parameters[i]).Within(1e-5), $"param {i}");
    }

    [Test]
    public void LoraTrainingUpdatesOnlyTheAdapterAndLossMaskLimitsTheLoss()
    {
        var c = TinyGpt2();
        var model = new TransformerModel(c);
        model.InitializeRandom(5);
        var before = model.Parameters.ToArray();
        var a = model.AttachAdapter(LoraConfig.Default(c.Family, rank: 2, alpha: 4f), 9);
        var trainer = new CausalLmTrainer(model, new LearningRateSchedule(1e-2f, 0, 10, DecayKind.Constant));
        var lossMask = new float[] { 0, 0, 0, 1, 1, 1 };
        var batch = Batch([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1], 1, 6, lossMask);
        var r = trainer.Step([batch]);
        Assert.That(model.Parameters, Is.EqualTo(before));
        Assert.That(a.Parameters.Any(p => p != 0f) && a.Gradients.Any(g => g != 0f), Is.True);

        // Response-only loss = mean over the 3 predictions of tokens 4, 5, 6 (the pre-step forward used B = 0 adapters).
        var fresh = new TransformerModel(c);
        before.CopyTo(fresh.Parameters, 0);
        fresh.Forward(batch.Tokens, batch.Mask, 1, 6);
        var lg = fresh.Logits.ToArray();
        double expected = 0;
        for (int t = 2; t < 5; t++)
        {
            var row = lg.AsSpan(t * c.VocabSize, c.VocabSize).ToArray();
            expected += Math.Log(row.Sum(z => Math.Exp(z))) - row[batch.Tokens[t + 1]];
        }

        Assert.That(r.Loss, Is.EqualTo(expected / 3).Within(1e-5));
    }
}
