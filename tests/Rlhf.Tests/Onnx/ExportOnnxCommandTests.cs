using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Onnx;
using Rlhf.Tests.Cli;
using static Rlhf.Tests.Onnx.OnnxTestModels;

namespace Rlhf.Tests.Onnx;

public class ExportOnnxCommandTests
{
    private static readonly int[] Tokens = [3, 1, 4, 1, 5, 0, 0, 9, 2, 6];
    private static readonly float[] Mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1];

    [Test]
    public void ExportsAnHfModelWithAPeftAdapterAsLoraInputs()
    {
        string dir = TempDir();
        try
        {
            var c = Gpt2;
            var model = NewModel(c, lora: true);
            var adapter = model.Adapter!;
            model.DetachAdapter();
            ModelCheckpoint.SaveHf(model, Path.Combine(dir, "base"));
            var tensors = new NamedTensors();
            var modules = new List<string>();
            foreach (var t in adapter.Tensors)
            {
                tensors.Add(t.Name, t.Shape, adapter.Parameters.AsSpan(t.Offset, t.Length).ToArray());
                if (PeftLoraAdapter.TryParseName(t.Name, out string module, out bool isA) && isA) modules.Add(module);
            }

            PeftLoraAdapter.Write(Path.Combine(dir, "adapter"), new LoraAdapterFiles(new LoraAdapterConfig(adapter.Rank, adapter.Config.Alpha, modules, null), tensors));
            var r = CliRunner.Run(dir, "export-onnx", "--model", "base", "--adapter", "adapter", "--lora-inputs", "--out", "out/model.onnx");
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
            Assert.That(r.Stdout, Does.Contain("LoRA inputs"));

            var reloaded = ModelCheckpoint.LoadHf(Path.Combine(dir, "base"));
            var a = reloaded.AttachAdapter(adapter.Config, 0);
            adapter.Parameters.CopyTo(a.Parameters, 0);
            reloaded.Forward(Tokens, Mask, 2, 5);
            using var lm = new OnnxCausalLm(Path.Combine(dir, "out", "model.onnx"), new OnnxSessionOptions(Threads: 1));
            lm.UseAdapter(a);
            var logits = new float[2 * 5 * c.VocabSize];
            lm.Forward(Tokens, Mask, 2, 5, logits);
            AssertRelClose(logits, reloaded.Logits, 1e-4, "exported logits");

            var again = CliRunner.Run(dir, "export-onnx", "--model", "base", "--out", "out/model.onnx");
            Assert.That(again.ExitCode, Is.EqualTo(2));
            Assert.That(again.Stderr, Does.Contain("--force"));
            var noAdapter = CliRunner.Run(dir, "export-onnx", "--model", "base", "--lora-inputs", "--out", "x.onnx");
            Assert.That(noAdapter.ExitCode, Is.EqualTo(2));
            Assert.That(noAdapter.Stderr, Does.Contain("--adapter"));
            var noHead = CliRunner.Run(dir, "export-onnx", "--model", "base", "--value-head", "--out", "y.onnx");
            Assert.That(noHead.ExitCode, Is.EqualTo(2));
            Assert.That(noHead.Stderr, Does.Contain("v_head.summary.weight"));
            var missing = CliRunner.Run(dir, "export-onnx", "--model", "nowhere", "--out", "z.onnx");
            Assert.That(missing.ExitCode, Is.EqualTo(2));
            Assert.That(missing.Stderr, Does.Contain("nowhere"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
