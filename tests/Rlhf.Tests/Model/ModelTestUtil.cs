using Rlhf.Model;
using Rlhf.Tests.Support;

namespace Rlhf.Tests.Model;

internal static class ModelTestUtil
{
    /// <summary>max |a − e| / max(1, max|e|) style check: each element within tol·(|e| + scale·0.1 + tiny).</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double relTol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what + " length");
        double scale = 0;
        foreach (double e in expected) scale = Math.Max(scale, Math.Abs(e));
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            double allowed = relTol * (Math.Abs(expected[i]) + 0.1 * scale) + 1e-7;
            if (!(err <= allowed))
                Assert.Fail($"{what}[{i}]: got {actual[i]}, expected {expected[i]} (err {err:g3} > {allowed:g3})");
        }
    }

    public static void LoadParameters(TransformerModel model, Fixture f)
    {
        foreach (var t in model.Layout.Tensors)
            model.LoadTensor(t.Name, f["param." + t.Name].AsFloats());
    }

    public static float[] RandomFloats(int n, ulong seed, float scale = 1f)
    {
        var rng = new Xoshiro256(seed);
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = (float)(scale * rng.NextGaussian());
        return r;
    }

    public static TransformerConfig TinyGpt2() => TransformerConfig.Gpt2(vocabSize: 11, contextLength: 8, modelDim: 8, layerCount: 2, headCount: 2);

    public static TransformerConfig TinyLlama() => TransformerConfig.Llama(vocabSize: 11, contextLength: 8, modelDim: 8, layerCount: 2, headCount: 4, kvHeadCount: 2, hiddenDim: 12);
}
