using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Kernels.Optim;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>
/// AdamW and global-norm clipping over 10M parameters, against streaming AdamW's traffic (read p, g, m, v; write
/// p, m, v) once.
/// </summary>
[MemoryDiagnoser]
public class AdamWBenchmarks
{
    private const int N = 10_000_000;
    private float[] p = null!, g = null!, m = null!, v = null!;
    private int step;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        var rng = new Random(3);
        p = new float[N];
        g = new float[N];
        m = new float[N];
        v = new float[N];
        for (int i = 0; i < N; i++)
        {
            p[i] = (float)rng.NextDouble() - 0.5f;
            g[i] = 1e-3f * ((float)rng.NextDouble() - 0.5f);
        }
    }

    [Benchmark(Baseline = true)]
    public void Stream() => PpoStreaming.RunAdam(p, g, m, v, Threads);

    [Benchmark]
    public void AdamWStep() => AdamW.Step(p, g, m, v, ++step, 1e-4);

    /// <summary>Reads the gradients once for the norm (no clipping at this max norm).</summary>
    [Benchmark]
    public float AdamWGlobalNorm() => GradientClipping.ClipByGlobalNorm(g, 1e9f);
}
