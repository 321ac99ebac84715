using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using Rlhf.Kernels.Ppo;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>
/// The PPO policy and value losses with their gradients over [256 × 512], against streaming their 4 inputs and
/// 1 output once. Goal: within 2× of the stream. Rewards (2 inputs, 1 output) are measured beside them.
/// </summary>
[MemoryDiagnoser]
public class PpoLossBenchmarks
{
    private const int B = 256, T = 512;
    private float[] a = null!, b = null!, c = null!, mask = null!, grad = null!, scores = null!;
    private int validCount;

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>The policy loss skips padding 64 tokens at a time, so the suite times both kinds of batch.</summary>
    [Params(PpoMasks.Padded, PpoMasks.AllValid)]
    public string Mask { get; set; } = PpoMasks.Padded;

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        var rng = new Random(2);
        a = new float[B * T];
        b = new float[B * T];
        c = new float[B * T];
        for (int i = 0; i < a.Length; i++)
        {
            b[i] = -3f * (float)rng.NextDouble();
            a[i] = b[i] + 0.4f * ((float)rng.NextDouble() - 0.5f);
            c[i] = (float)rng.NextDouble() - 0.5f;
        }

        mask = PpoMasks.Create(Mask, rng, B, T);
        grad = new float[B * T];
        scores = new float[B];
        validCount = MaskCount.Count(mask);
    }

    [Benchmark(Baseline = true)]
    public void Stream() => PpoStreaming.Run(a, b, c, mask, grad, null, Threads);

    [Benchmark]
    public PolicyLossStats PpoPolicyLoss() => PolicyLoss.Compute(a, b, c, mask, grad, B, T, 0.2f);

    /// <summary>As PpoTrainer calls it: the minibatch's mask counted once (<see cref="MaskCount"/>) for both losses.</summary>
    [Benchmark]
    public PolicyLossStats PpoPolicyLossGivenCount() => PolicyLoss.Compute(a, b, c, mask, grad, B, T, 0.2f, validCount: validCount);

    [Benchmark]
    public ValueLossStats PpoValueLoss() => ValueLoss.Compute(a, b, c, mask, grad, B, T, 0.2f);

    [Benchmark]
    public ValueLossStats PpoValueLossGivenCount() => ValueLoss.Compute(a, b, c, mask, grad, B, T, 0.2f, validCount: validCount);

    [Benchmark]
    public void PpoRewardsKl() => PpoRewards.Compute(a, scores, mask, grad, B, T, 0.1f);
}
