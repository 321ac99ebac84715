using Rlhf.Kernels;
using Rlhf.Kernels.Optim;
using Rlhf.Kernels.Ppo;
using Rlhf.Tests.Support;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

/// <summary>The kernels allocate nothing proportional to the data: under 1 KB per [256×512] call after warm-up.</summary>
[NonParallelizable]
public class PpoAllocationTests
{
    private const int B = 256, T = 512, N = B * T;

    [Test]
    public void KernelsDoNotAllocatePerCall()
    {
        var rng = new Random(2);
        var a = Normal(rng, N);
        var b = Normal(rng, N);
        var c = Normal(rng, N);
        var mask = Mask(rng, B, T);
        var o1 = new float[N];
        var o2 = new float[N];
        var m = new float[N];
        var v = new float[N];
        var scores = new float[B];
        var runs = new (string Name, Action Run)[]
        {
            ("PolicyLoss", () => PolicyLoss.Compute(a, b, c, mask, o1, B, T, 0.2f)),
            ("ValueLoss", () => ValueLoss.Compute(a, b, c, mask, o1, B, T, 0.2f)),
            ("ValueLoss unclipped", () => ValueLoss.Compute(a, b, c, mask, o1, B, T, float.PositiveInfinity)),
            ("PpoRewards", () => PpoRewards.Compute(a, scores, mask, o1, B, T, 0.1f)),
            ("Gae", () => Gae.Compute(a, b, mask, o1, o2, B, T, 0.99f, 0.95f)),
            ("MaskedWhitening", () => MaskedWhitening.Whiten(a, mask, o1)),
            ("AdamW", () => AdamW.Step(o2, a, m, v, 3, 1e-3)),
            ("GradientClipping", () => GradientClipping.ClipByGlobalNorm(o1, 1f)),
        };

        int saved = KernelParallelism.MaxThreads;
        try
        {
            KernelParallelism.MaxThreads = 1;
            foreach (var (name, run) in runs)
            {
                long allocated = Allocations.PerCall(run);
                Assert.That(allocated, Is.EqualTo(0), $"{name} allocated {allocated} bytes");
            }
        }
        finally
        {
            KernelParallelism.MaxThreads = saved;
        }
    }
}
