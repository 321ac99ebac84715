using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

/// <summary>The opt-in per-layer-type profiler: what it records for each pass, and that it changes no result.</summary>
[TestFixture]
public class LayerProfileTests
{
    private const int B = 2, T = 5;

    private static (int[] Tokens, float[] Mask) Batch(int vocab)
    {
        var tokens = new int[B * T];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = (i * 7 + 3) % vocab;
        var mask = new float[] { 1, 1, 1, 1, 1, 0, 0, 1, 1, 1 };
        return (tokens, mask);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ForwardAndBackwardRecordEveryLayerTypeOncePerLayerCall(bool llama)
    {
        var config = llama ? TinyLlama() : TinyGpt2();
        var model = new TransformerModel(config);
        model.InitializeRandom(3);
        var (tokens, mask) = Batch(config.VocabSize);
        var profile = new LayerProfile();
        model.Profiler = profile;
        model.Forward(tokens, mask, B, T);
        model.Backward(RandomFloats(B * T * config.VocabSize, 4), default);
        int L = config.LayerCount;
        const ProfilePass F = ProfilePass.Forward, Bw = ProfilePass.Backward;
        Assert.Multiple(() =>
        {
            Assert.That(profile.Calls(LayerKind.Embedding, F), Is.EqualTo(1));
            Assert.That(profile.Calls(LayerKind.Norm, F), Is.EqualTo(2 * L + 1));
            foreach (var kind in new[] { LayerKind.QkvMatmul, LayerKind.AttentionCore, LayerKind.AttentionProjectionMatmul, LayerKind.MlpUpMatmul, LayerKind.Activation, LayerKind.MlpDownMatmul })
            {
                Assert.That(profile.Calls(kind, F), Is.EqualTo(L), $"{kind} forward");
                Assert.That(profile.Calls(kind, Bw), Is.EqualTo(L), $"{kind} backward");
            }

            Assert.That(profile.Calls(LayerKind.ResidualAdd, F), Is.EqualTo(2 * L));
            Assert.That(profile.Calls(LayerKind.LmHeadMatmul, F), Is.EqualTo(1));
            Assert.That(profile.Calls(LayerKind.LmHeadMatmul, Bw), Is.EqualTo(1));
            Assert.That(profile.Calls(LayerKind.Norm, Bw), Is.EqualTo(2 * L + 1));
            Assert.That(profile.Calls(LayerKind.Embedding, Bw), Is.EqualTo(1));
            Assert.That(profile.Calls(LayerKind.Rope, F), Is.EqualTo(llama ? L : 0));
            Assert.That(profile.Calls(LayerKind.Loss, F), Is.Zero, "the model does not time what its caller does");
            Assert.That(profile.Total, Is.GreaterThan(TimeSpan.Zero));
        });

        string table = profile.ToMarkdown();
        Assert.That(table, Does.Contain("| QkvMatmul |"));
        Assert.That(table, Does.Not.Contain("| Loss |"), "kinds never recorded are left out");
        profile.Reset();
        Assert.That(profile.Calls(LayerKind.Norm, F), Is.Zero);
    }

    [Test]
    public void ProfilingChangesNoBit()
    {
        var config = TinyGpt2();
        var (tokens, mask) = Batch(config.VocabSize);
        var dLogits = RandomFloats(B * T * config.VocabSize, 5);
        float[] Run(LayerProfile? profile, out float[] grads)
        {
            var model = new TransformerModel(config) { Profiler = profile };
            model.InitializeRandom(3);
            model.Forward(tokens, mask, B, T);
            var logits = model.Logits.ToArray();
            model.Backward(dLogits, default);
            grads = model.Gradients.ToArray();
            return logits;
        }

        var plain = Run(null, out var plainGrads);
        var profiled = Run(new LayerProfile(), out var profiledGrads);
        Assert.That(profiled, Is.EqualTo(plain));
        Assert.That(profiledGrads, Is.EqualTo(plainGrads));
    }

    [Test]
    public void CachedDecodingRecordsTheKvCacheAndTheLmHead()
    {
        var config = TinyLlama();
        var model = new TransformerModel(config);
        model.InitializeRandom(3);
        var profile = new LayerProfile();
        model.Profiler = profile;
        var result = new Generator(model).Generate([[1, 2, 3], [4, 5]], new GenerationOptions(MaxNewTokens: 3, Temperature: 0f));
        // One prefill and two steps (the third token needs no forward).
        Assert.That(result.Lengths, Is.EqualTo(new[] { 3, 3 }));
        Assert.That(profile.Calls(LayerKind.LmHeadMatmul, ProfilePass.Forward), Is.EqualTo(3));
        Assert.That(profile.Calls(LayerKind.KvCacheWrite, ProfilePass.Forward), Is.EqualTo(3 * config.LayerCount));
        Assert.That(profile.Calls(LayerKind.Norm, ProfilePass.Backward), Is.Zero);
    }
}
