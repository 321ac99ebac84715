using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Benchmarks.Onnx;

/// <summary>The engine issue's GPT-2 config (6 layers, 384 channels, 6 heads, vocab 50257), random weights, exported once per setup.</summary>
internal static class OnnxBenchSetup
{
    public static TransformerConfig Config => TransformerConfig.Gpt2(50257, 256, 384, 6, 6);

    public static (TransformerModel Model, string Path) ModelAndExport()
    {
        var model = new TransformerModel(Config);
        model.InitializeRandom(1);
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rlhf-onnx-bench", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = System.IO.Path.Combine(dir, "gpt2.onnx");
        OnnxExporter.ExportCausalLm(model, path);
        return (model, path);
    }

    public static void Delete(string path) => Directory.Delete(System.IO.Path.GetDirectoryName(path)!, recursive: true);

    public static (int[] Tokens, float[] Mask) Batch(int batch, int seq, int vocab)
    {
        var rng = new Random(5);
        var tokens = new int[batch * seq];
        var mask = new float[batch * seq];
        for (int i = 0; i < tokens.Length; i++) (tokens[i], mask[i]) = (rng.Next(vocab), 1f);
        return (tokens, mask);
    }
}
