using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>The two logits shapes of the kernels issue, on 1 and 2 threads; derived suites set up their buffers from them.</summary>
public abstract class VocabularyBenchmarkBase
{
    protected int Rows { get; private set; }

    protected int Vocabulary { get; private set; }

    [Params("512x50257", "2048x32000")]
    public string Shape { get; set; } = "512x50257";

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Applies <see cref="Threads"/> and parses <see cref="Shape"/> into <see cref="Rows"/> × <see cref="Vocabulary"/>.</summary>
    protected void SetupShape()
    {
        KernelParallelism.MaxThreads = Threads;
        (Rows, Vocabulary) = VocabularyShapes.Parse(Shape);
    }
}
