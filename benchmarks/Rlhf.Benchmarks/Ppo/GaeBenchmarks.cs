using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Kernels.Ppo;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>
/// GAE over [256 × 512] (TRL's compute_advantages shape), against streaming its 3 inputs and 2 outputs once.
/// Goal: within 2× of the stream. Peer: tests/reference/bench_gae_torch.py (TRL's Python loop over time steps).
/// </summary>
[MemoryDiagnoser]
public class GaeBenchmarks
{
    private const int B = 256, T = 512;
    private float[] rewards = null!, values = null!, mask = null!, advantages = null!, returns = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Padding blocks cost GAE little (it skips them), so the suite times both kinds of batch.</summary>
    [Params(PpoMasks.Padded, PpoMasks.AllValid)]
    public string Mask { get; set; } = PpoMasks.Padded;

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        var rng = new Random(1);
        rewards = Fill(rng, B * T);
        values = Fill(rng, B * T);
        mask = PpoMasks.Create(Mask, rng, B, T);
        advantages = new float[B * T];
        returns = new float[B * T];
    }

    private static float[] Fill(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)rng.NextDouble() - 0.5f;
        return x;
    }

    [Benchmark(Baseline = true)]
    public void Stream() => PpoStreaming.Run(rewards, values, mask, null, advantages, returns, Threads);

    [Benchmark]
    public void Gae() => Rlhf.Kernels.Ppo.Gae.Compute(rewards, values, mask, advantages, returns, B, T, 0.99f, 0.95f);

    /// <summary>TRL's full compute_advantages: GAE, then masked whitening of the advantages in place.</summary>
    [Benchmark]
    public MaskedMoments GaeAndWhiten()
    {
        Rlhf.Kernels.Ppo.Gae.Compute(rewards, values, mask, advantages, returns, B, T, 0.99f, 0.95f);
        return MaskedWhitening.Whiten(advantages, mask, advantages);
    }
}
