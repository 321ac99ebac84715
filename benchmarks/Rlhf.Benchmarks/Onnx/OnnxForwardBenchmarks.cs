using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Benchmarks.Onnx;

/// <summary>
/// Forward pass with logits [2, 64, 50257] for the GPT-2 config: the engine's kernels vs ONNX Runtime's CPU provider
/// (MLAS) on the exported graph, same weights, same thread count.
/// </summary>
[MemoryDiagnoser]
public class OnnxForwardBenchmarks
{
    private const int Batch = 2, Seq = 64;
    private TransformerModel model = null!;
    private OnnxCausalLm ort = null!;
    private string path = "";
    private int[] tokens = [];
    private float[] mask = [], logits = [];

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        (model, path) = OnnxBenchSetup.ModelAndExport();
        ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: Threads));
        (tokens, mask) = OnnxBenchSetup.Batch(Batch, Seq, model.Config.VocabSize);
        logits = new float[Batch * Seq * model.Config.VocabSize];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        ort.Dispose();
        OnnxBenchSetup.Delete(path);
    }

    [Benchmark(Baseline = true)]
    public float EngineForward()
    {
        model.Forward(tokens, mask, Batch, Seq);
        return model.Logits[^1];
    }

    [Benchmark]
    public float OrtForward()
    {
        ort.Forward(tokens, mask, Batch, Seq, logits);
        return logits[^1];
    }
}
