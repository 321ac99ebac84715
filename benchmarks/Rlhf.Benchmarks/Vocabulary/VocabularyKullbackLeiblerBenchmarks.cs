using BenchmarkDotNet.Attributes;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>Full-vocabulary KL(policy‖reference) over two logits buffers [N, V] against reading both buffers once.</summary>
[MemoryDiagnoser]
public class VocabularyKullbackLeiblerBenchmarks : VocabularyBenchmarkBase
{
    private float[] policy = [];
    private float[] reference = [];
    private float[] kl = [];

    [GlobalSetup]
    public void Setup()
    {
        SetupShape();
        policy = VocabularyShapes.RandomLogits(Rows, Vocabulary, seed: 1);
        reference = VocabularyShapes.RandomLogits(Rows, Vocabulary, seed: 2);
        kl = new float[Rows];
    }

    [Benchmark(Baseline = true, Description = "read both (Sum × 2)")]
    public float ReadBoth() =>
        VocabularyShapes.ReadPass(policy, Rows, Vocabulary) + VocabularyShapes.ReadPass(reference, Rows, Vocabulary);

    [Benchmark(Description = "full-vocabulary KL")]
    public void FullVocabulary() => KullbackLeibler.FullVocabulary(policy, reference, Vocabulary, 1f, kl);
}
