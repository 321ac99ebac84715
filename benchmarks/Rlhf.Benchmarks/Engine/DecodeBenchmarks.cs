using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Model;

namespace Rlhf.Benchmarks.Engine;

/// <summary>
/// KV-cache generation: time per decoded token step at batch 1 and 8, next to one read of the model's weights
/// (decode is bandwidth-bound: goal ≤ 2× the read). Each invocation decodes <see cref="Steps"/> tokens after a
/// 16-token prompt, so per-step time = mean / Steps (the prompt's prefill is included and small).
/// </summary>
[MemoryDiagnoser]
public class DecodeBenchmarks
{
    private const int Steps = 32;
    private TransformerModel model = null!;
    private Generator generator = null!;
    private int[][] prompts = null!;
    private float sink;

    [ParamsAllValues]
    public EngineModel Model { get; set; }

    [Params(1, 8)]
    public int Batch { get; set; }

    [Params(2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        model = new TransformerModel(EngineConfigs.Of(Model));
        model.InitializeRandom(seed: 1);
        generator = new Generator(model);
        var rng = new Random(3);
        prompts = Enumerable.Range(0, Batch).Select(_ => Enumerable.Range(0, 16).Select(_ => rng.Next(model.Config.VocabSize)).ToArray()).ToArray();
        Generate();
    }

    [Benchmark(Baseline = true, Description = "read the weights once × steps")]
    public float ReadWeights()
    {
        float s = 0;
        for (int i = 0; i < Steps; i++) s += System.Numerics.Tensors.TensorPrimitives.Sum(model.Parameters);
        return sink = s;
    }

    [Benchmark(Description = "generate 32 tokens (greedy, KV cache)")]
    public GenerationResult Generate() =>
        generator.Generate(prompts, new GenerationOptions(MaxNewTokens: Steps, Temperature: 0f));
}
