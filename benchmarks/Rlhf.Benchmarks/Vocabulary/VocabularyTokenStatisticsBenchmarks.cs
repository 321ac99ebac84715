using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>Token statistics (log-prob, entropy, lse) over logits [N, V] against a read-only pass over the same buffer.</summary>
[MemoryDiagnoser]
public class VocabularyTokenStatisticsBenchmarks
{
    private float[] logits = [];
    private int[] tokens = [];
    private float[] logProbs = [];
    private float[] entropy = [];
    private float[] logSumExp = [];
    private float[] gradient = [];
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
        logits = VocabularyShapes.RandomLogits(rows, vocabulary, seed: 1);
        gradient = (float[])logits.Clone();
        var random = new Random(2);
        tokens = new int[rows];
        for (int i = 0; i < rows; i++) tokens[i] = random.Next(vocabulary);
        logProbs = new float[rows];
        entropy = new float[rows];
        logSumExp = new float[rows];
        TokenStatistics.Compute(logits, tokens, vocabulary, 1f, logProbs, entropy, logSumExp);
    }

    [Benchmark(Baseline = true, Description = "read pass (Sum)")]
    public float ReadPass() => VocabularyShapes.ReadPass(logits, rows, vocabulary);

    [Benchmark(Description = "log-prob + lse")]
    public void LogProbs() => TokenStatistics.LogProbs(logits, tokens, vocabulary, 1f, logProbs, logSumExp);

    [Benchmark(Description = "log-prob + entropy + lse")]
    public void Compute() => TokenStatistics.Compute(logits, tokens, vocabulary, 1f, logProbs, entropy, logSumExp);

    [Benchmark(Description = "log-prob + entropy + lse, T=0.7")]
    public void ComputeTemperature() => TokenStatistics.Compute(logits, tokens, vocabulary, 0.7f, logProbs, entropy, logSumExp);

    // Backward overwrites its input; running it repeatedly on the same buffer keeps the values bounded
    // (a gradient row is again a valid logits row), and the cost does not depend on the values.
    [Benchmark(Description = "backward in place (read + write)")]
    public void Backward() => TokenStatistics.Backward(gradient, tokens, vocabulary, 1f, logSumExp, entropy, logProbs, entropy);
}
