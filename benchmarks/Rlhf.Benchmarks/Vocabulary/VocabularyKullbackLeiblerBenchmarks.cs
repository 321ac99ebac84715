using BenchmarkDotNet.Attributes;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>
/// Full-vocabulary KL(policy‖reference) over two logits buffers [N, V] against reading both buffers once, one after the
/// other (the baseline), and side by side (the access pattern the kernel needs; slower where the buffers' placement
/// makes the two streams conflict, as the GC's 256 MiB-aligned placement does for 2048 × 32000). The same inputs are
/// also timed placed in one buffer where they do not conflict, so both placements are measured in the same run.
/// </summary>
[MemoryDiagnoser]
public class VocabularyKullbackLeiblerBenchmarks : VocabularyBenchmarkBase
{
    private float[] policy = [];
    private float[] reference = [];
    private float[] kl = [];
    private float[] bothApart = [];
    private int referenceApart;

    [GlobalSetup]
    public void Setup()
    {
        SetupShape();
        policy = VocabularyShapes.RandomLogits(Rows, Vocabulary, seed: 1);
        reference = VocabularyShapes.RandomLogits(Rows, Vocabulary, seed: 2);
        kl = new float[Rows];
        int n = Rows * Vocabulary;
        referenceApart = VocabularyShapes.SecondStartApart(Rows, Vocabulary);
        bothApart = GC.AllocateUninitializedArray<float>(referenceApart + n);
        policy.CopyTo(bothApart, 0);
        reference.CopyTo(bothApart, referenceApart);
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

    [Benchmark(Description = "read both side by side (Dot), buffers apart")]
    public float ReadSideBySideApart() => VocabularyShapes.ReadSideBySide(bothApart, referenceApart, Rows, Vocabulary);

    [Benchmark(Description = "full-vocabulary KL, buffers apart")]
    public void FullVocabularyApart()
    {
        int n = Rows * Vocabulary;
        KullbackLeibler.FullVocabulary(bothApart.AsSpan(0, n), bothApart.AsSpan(referenceApart, n), Vocabulary, 1f, kl);
    }
}
