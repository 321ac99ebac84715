using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Benchmarks.Onnx;

/// <summary>
/// Greedy KV-cache generation, 4 prompts of 16 tokens + 32 new tokens each (128 tokens per operation), for the GPT-2
/// config: the engine's <see cref="Generator"/> vs <see cref="OnnxGenerator"/> (same decoding loop). Tokens/s = 128 / mean.
/// </summary>
[MemoryDiagnoser]
public class OnnxGenerationBenchmarks
{
    private const int Batch = 4, Prompt = 16, NewTokens = 32;
    private Generator engine = null!;
    private OnnxGenerator ortGen = null!;
    private OnnxCausalLm ort = null!;
    private string path = "";
    private int[][] prompts = [];
    private readonly GenerationOptions options = new(NewTokens, Temperature: 0f);

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        var (model, p) = OnnxBenchSetup.ModelAndExport();
        path = p;
        engine = new Generator(model);
        ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: Threads));
        ortGen = new OnnxGenerator(ort, model.Config.ContextLength);
        var (tokens, _) = OnnxBenchSetup.Batch(Batch, Prompt, model.Config.VocabSize);
        prompts = new int[Batch][];
        for (int b = 0; b < Batch; b++) prompts[b] = tokens.AsSpan(b * Prompt, Prompt).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        ort.Dispose();
        OnnxBenchSetup.Delete(path);
    }

    [Benchmark(Baseline = true)]
    public int EngineGenerate() => engine.Generate(prompts, options).Tokens[^1];

    [Benchmark]
    public int OrtGenerate() => ortGen.Generate(prompts, options).Tokens[^1];
}
