using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>
/// The per-token k3 KL estimator over [256 × 512] log-probs (policy and reference in, k3 out) next to a pass that
/// reads two buffers and writes one (memory-bound time; goal: within 2×).
/// </summary>
public class VocabularySampledKlBenchmarks
{
    private const int Rows = 256, Steps = 512, N = Rows * Steps;
    private readonly float[] logp = new float[N], refLogp = new float[N], output = new float[N];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        for (int i = 0; i < N; i++)
        {
            logp[i] = -3f * (float)rng.NextDouble();
            refLogp[i] = logp[i] + 0.2f * (float)(rng.NextDouble() - 0.5);
        }

        KernelParallelism.MaxThreads = 1;
    }

    [Benchmark(Baseline = true, Description = "read 2 + write 1 (TensorPrimitives.Subtract)")]
    public void Streaming() => System.Numerics.Tensors.TensorPrimitives.Subtract(logp, refLogp, output);

    [Benchmark(Description = "k3 [256x512]")]
    public void K3() => KullbackLeibler.K3(logp, refLogp, output);

    [Benchmark(Description = "k1 [256x512]")]
    public void K1() => KullbackLeibler.K1(logp, refLogp, output);
}
