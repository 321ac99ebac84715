using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Tests.Onnx;

/// <summary>Small random models, their ONNX exports in a temp folder, and the comparison used by the parity tests.</summary>
internal static class OnnxTestModels
{
    public static TransformerConfig Gpt2 => TransformerConfig.Gpt2(61, 24, 32, 2, 4);

    /// <summary>Grouped-query attention: 4 query heads share 2 key/value heads.</summary>
    public static TransformerConfig LlamaGqa => TransformerConfig.Llama(61, 24, 32, 2, 4, 2, 48);

    public static TransformerModel NewModel(TransformerConfig c, bool lora, ulong seed = 17)
    {
        var m = new TransformerModel(c);
        m.InitializeRandom(seed, std: 0.3f);
        if (!lora) return m;
        var targets = c.Family == ModelFamily.Gpt2 ? new[] { "c_attn", "mlp.c_proj" } : new[] { "q_proj", "v_proj", "down_proj" };
        var a = m.AttachAdapter(new LoraConfig(2, 4f, targets), 3);
        RandomizeB(a, 5);
        return m;
    }

    /// <summary>PEFT starts B at 0 (a no-op adapter); random B makes the adapter change the logits.</summary>
    public static void RandomizeB(LoraAdapter a, ulong seed)
    {
        var rng = new Xoshiro256(seed);
        foreach (var s in a.Slots)
        {
            for (int i = 0; i < s.Out * a.Rank; i++) a.Parameters[s.BOffset + i] = (float)(0.3 * rng.NextGaussian());
        }
    }

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhf-onnx-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static string Export(TransformerModel m, string dir, OnnxExportOptions? options = null, string name = "model.onnx")
    {
        string path = Path.Combine(dir, name);
        OnnxExporter.ExportCausalLm(m, path, options);
        return path;
    }

    /// <summary>|actual − expected| ≤ rel·max(1, |expected|) elementwise, reporting the worst element.</summary>
    public static void AssertRelClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double rel, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what + ": length");
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]) / Math.Max(1.0, Math.Abs(expected[i]));
            if (!(err <= worst)) (worst, at) = (double.IsNaN(err) ? double.PositiveInfinity : err, i);
        }

        Assert.That(worst, Is.LessThanOrEqualTo(rel), $"{what}: worst relative error at {at}: actual {(at >= 0 ? actual[at] : 0)}, expected {(at >= 0 ? expected[at] : 0)}");
    }
}
