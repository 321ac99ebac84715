using BenchmarkDotNet.Attributes;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>Token statistics (log-prob, entropy, lse) over logits [N, V] against a read-only pass over the same buffer.</summary>
[MemoryDiagnoser]
public class VocabularyTokenStatisticsBenchmarks : VocabularyBenchmarkBase
{
    private float[] logits = [];
    private int[] tokens = [];
    private float[] logProbs = [];
    private float[] entropy = [];
    private float[] logSumExp = [];
    private float[] gradient = [];

    [GlobalSetup]
    public void Setup()
    {
        SetupShape();
        logits = VocabularyShapes.RandomLogits(Rows, Vocabulary, seed: 1);
        gradient = (float[])logits.Clone();
        var random = new Random(2);
        tokens = new int[Rows];
        for (int i = 0; i < Rows; i++) tokens[i] = random.Next(Vocabulary);
        logProbs = new float[Rows];
        entropy = new float[Rows];
        logSumExp = new float[Rows];
        TokenStatistics.Compute(logits, tokens, Vocabulary, 1f, logProbs, entropy, logSumExp);
    }

    [Benchmark(Baseline = true, Description = "read pass (Sum)")]
    public float ReadPass() => VocabularyShapes.ReadPass(logits, Rows, Vocabulary);

    [Benchmark(Description = "log-prob + lse")]
    public void LogProbs() => TokenStatistics.LogProbs(logits, tokens, Vocabulary, 1f, logProbs, logSumExp);

    [Benchmark(Description = "log-prob + entropy + lse")]
    public void Compute() => TokenStatistics.Compute(logits, tokens, Vocabulary, 1f, logProbs, entropy, logSumExp);

    [Benchmark(Description = "log-prob + entropy + lse, clamped scan only")]
    public void ComputeClamped()
    {
        // The scan before its unclamped first pass (fifth session), measured in the same run.
        SoftmaxRowScan.UnclampedPass = false;
        try
        {
            TokenStatistics.Compute(logits, tokens, Vocabulary, 1f, logProbs, entropy, logSumExp);
        }
        finally
        {
            SoftmaxRowScan.UnclampedPass = true;
        }
    }

    [Benchmark(Description = "log-prob + entropy + lse, T=0.7")]
    public void ComputeTemperature() => TokenStatistics.Compute(logits, tokens, Vocabulary, 0.7f, logProbs, entropy, logSumExp);

    // Backward overwrites its input; running it repeatedly on the same buffer keeps the values bounded
    // (a gradient row is again a valid logits row), and the cost does not depend on the values.
    [Benchmark(Description = "backward in place (read + write)")]
    public void Backward() => TokenStatistics.Backward(gradient, tokens, Vocabulary, 1f, logSumExp, entropy, logProbs, entropy);
}
