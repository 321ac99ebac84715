using BenchmarkDotNet.Attributes;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>
/// Full-vocabulary KL(policy‖reference) over two logits buffers [N, V] against reading both buffers once, one after the
/// other (the baseline), and side by side (the access pattern the kernel needs; slower where the buffers' placement
/// makes the two streams conflict, as the GC's 256 MiB-aligned placement does for 2048 × 32000).
/// </summary>
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

    [Benchmark(Description = "read both side by side (Dot)")]
    public float ReadSideBySide() => VocabularyShapes.ReadSideBySide(policy, reference, Rows, Vocabulary);

    [Benchmark(Description = "full-vocabulary KL")]
    public void FullVocabulary() => KullbackLeibler.FullVocabulary(policy, reference, Vocabulary, 1f, kl);

    [Benchmark(Description = "full-vocabulary KL, clamped scan only")]
    public void FullVocabularyClamped()
    {
        // The kernel before its unclamped first pass (fourth session), measured in the same run.
        KullbackLeiblerRowScan.UnclampedPass = false;
        try
        {
            KullbackLeibler.FullVocabulary(policy, reference, Vocabulary, 1f, kl);
        }
        finally
        {
            KullbackLeiblerRowScan.UnclampedPass = true;
        }
    }
}
