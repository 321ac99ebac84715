using Rlhf.Kernels.Ppo;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

/// <summary>The PPO losses' <c>validCount</c> argument: a count given by the caller changes nothing but the work done.</summary>
public class ValidCountTests
{
    private const int Batch = 40, Steps = 700;

    private static (float[] X, float[] Old, float[] Target, float[] Mask) Inputs(int seed, int batch = Batch, int steps = Steps)
    {
        var rng = new Random(seed);
        var old = Uniform(rng, batch * steps, -4f, 0f);
        var x = Array.ConvertAll(old, o => o + 0.3f * (float)(rng.NextDouble() - 0.5));
        return (x, old, Normal(rng, batch * steps), Mask(rng, batch, steps));
    }

    [TestCase("policy")]
    [TestCase("value")]
    public void GivenCount_GivesTheSameBits(string loss)
    {
        var (x, old, target, mask) = Inputs(5);
        // -1 counts inside the kernel; the stats records compare by value.
        object Run(float[] grad, int validCount) => loss == "policy"
            ? PolicyLoss.Compute(x, old, target, mask, grad, Batch, Steps, 0.2f, validCount: validCount)
            : ValueLoss.Compute(x, old, target, mask, grad, Batch, Steps, 0.2f, validCount: validCount);
        var counted = new float[x.Length];
        var given = new float[x.Length];
        var a = Run(counted, -1);
        var b = Run(given, MaskCount.Count(mask));
        Assert.That(b, Is.EqualTo(a));
        Assert.That(given, Is.EqualTo(counted));
        Assert.That(counted.Count(g => g != 0), Is.GreaterThan(0), "the gradient must not be trivially zero");
        Assert.That(MaskCount.Count(mask), Is.EqualTo(mask.Count(m => m != 0)).And.GreaterThan(0));
    }

    [Test]
    public void MaskCount_CountsNonZeroEntries()
    {
        var mask = new float[37];
        mask[0] = 1f;
        mask[16] = float.NaN;
        mask[20] = -0f;
        mask[36] = 0.5f;
        Assert.That(MaskCount.Count(mask), Is.EqualTo(3));
    }

    [TestCase(-2)]
    [TestCase(41)]
    public void CountOutsideItsRange_IsRejectedNamingIt(int validCount)
    {
        var (x, old, target, mask) = Inputs(5, 5, 8);
        var policy = Assert.Throws<ArgumentOutOfRangeException>(() =>
            PolicyLoss.Compute(x, old, target, mask, new float[40], 5, 8, 0.2f, validCount: validCount));
        var value = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ValueLoss.Compute(x, old, target, mask, new float[40], 5, 8, 0.2f, validCount: validCount));
        foreach (var ex in new[] { policy!, value! })
        {
            Assert.That(ex.ParamName, Is.EqualTo("validCount"));
            Assert.That(ex.Message, Does.Contain($"got {validCount}"));
        }
    }
}
