using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>Full-vocabulary KL(policy‖reference) over two logits buffers [N, V] against reading both buffers once.</summary>
[MemoryDiagnoser]
public class VocabularyKullbackLeiblerBenchmarks
{
    private float[] policy = [];
    private float[] reference = [];
    private float[] kl = [];
    private int rows;
    private int vocabulary;

    [Params("512x50257", "2048x32000")]
    public string Shape { get; set; } = "512x50257";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        (rows, vocabulary) = VocabularyShapes.Parse(Shape);
        policy = VocabularyShapes.RandomLogits(rows, vocabulary, seed: 1);
        reference = VocabularyShapes.RandomLogits(rows, vocabulary, seed: 2);
        kl = new float[rows];
    }

    [Benchmark(Baseline = true, Description = "read both (Sum × 2)")]
    public float ReadBoth() =>
        VocabularyShapes.ReadPass(policy, rows, vocabulary) + VocabularyShapes.ReadPass(reference, rows, vocabulary);

    [Benchmark(Description = "full-vocabulary KL")]
    public void FullVocabulary() => KullbackLeibler.FullVocabulary(policy, reference, vocabulary, 1f, kl);
}
