using Rlhf.Onnx;
using static Rlhf.Tests.Onnx.OnnxTestModels;

namespace Rlhf.Tests.Onnx;

public class OnnxExportTests
{
    private static readonly int[] Tokens = [3, 1, 4, 1, 5, 0, 0, 9, 2, 6];
    private static readonly float[] Mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1];

    [Test]
    public void ExternalDataFileHoldsTheWeightsAndLoads()
    {
        string dir = TempDir();
        try
        {
            var c = LlamaGqa;
            var model = NewModel(c, lora: true);
            string path = Export(model, dir, new OnnxExportOptions { ExternalDataThreshold = 0 });
            long weights = (long)model.Parameters.Length * 4;
            Assert.That(new FileInfo(path + ".data").Length, Is.GreaterThanOrEqualTo(weights));
            Assert.That(new FileInfo(path).Length, Is.LessThan(weights / 4), "graph file without the weights");
            model.Forward(Tokens, Mask, 2, 5);
            using var lm = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
            var logits = new float[2 * 5 * c.VocabSize];
            lm.Forward(Tokens, Mask, 2, 5, logits);
            AssertRelClose(logits, model.Logits, 1e-4, "external-data logits");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void CudaRequestRunsOnCudaOrFallsBackWithAMessage()
    {
        string dir = TempDir();
        try
        {
            var c = Gpt2;
            var model = NewModel(c, lora: false);
            string path = Export(model, dir);
            using var lm = new OnnxCausalLm(path, new OnnxSessionOptions(Device: OnnxDevice.Cuda));
            if (lm.Session.ExecutionProvider == "CPU")
                Assert.That(lm.Session.FallbackMessage, Does.Contain("CUDA").And.Contain("CPU provider").And.Contain("model.onnx"));
            else
                Assert.That(lm.Session.FallbackMessage, Is.Null);
            model.Forward(Tokens, Mask, 2, 5);
            var logits = new float[2 * 5 * c.VocabSize];
            lm.Forward(Tokens, Mask, 2, 5, logits);
            AssertRelClose(logits, model.Logits, lm.Session.ExecutionProvider == "CPU" ? 1e-4 : 1e-3, "logits");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void LoraInputsNeedAnAdapter()
    {
        var model = NewModel(Gpt2, lora: false);
        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.ExportCausalLm(model, Path.Combine(Path.GetTempPath(), "never.onnx"), new OnnxExportOptions { LoraInputs = true }));
        Assert.That(e!.ParamName, Is.EqualTo("options"));
    }
}
