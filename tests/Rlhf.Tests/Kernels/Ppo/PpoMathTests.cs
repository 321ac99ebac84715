using System.Runtime.Intrinsics;
using Rlhf.Kernels.Ppo;

namespace Rlhf.Tests.Kernels.Ppo;

public class PpoMathTests
{
    [Test]
    public void ExpIsWithinFourUlpOfDoubleExp()
    {
        var lanes = new float[16];
        double worst = 0;
        for (double x = -86.5; x <= 88.7; x += 0.0137)
        {
            for (int j = 0; j < 16; j++) lanes[j] = (float)(x + j * 1e-3);
            var y = PpoMath.Exp(Vector512.Create(lanes));
            for (int j = 0; j < 16; j++)
            {
                double e = Math.Exp(lanes[j]);
                worst = Math.Max(worst, Math.Abs(y[j] - e) / e);
            }
        }

        Assert.That(worst, Is.LessThan(4 * 6e-8));
    }

    [Test]
    public void ExpEdges()
    {
        var y = PpoMath.Exp(Vector512.Create(0f, 1f, -1f, 100f, float.PositiveInfinity, -100f, float.NegativeInfinity, float.NaN, 0, 0, 0, 0, 0, 0, 0, 0));
        Assert.That(y[0], Is.EqualTo(1f));
        Assert.That(y[1], Is.EqualTo(MathF.E).Within(1e-6f));
        Assert.That(y[2], Is.EqualTo(1 / MathF.E).Within(1e-7f));
        Assert.That(y[3], Is.EqualTo(float.PositiveInfinity));
        Assert.That(y[4], Is.EqualTo(float.PositiveInfinity));
        Assert.That(y[5], Is.LessThan(3e-38f).And.GreaterThanOrEqualTo(0f));
        Assert.That(y[6], Is.LessThan(3e-38f).And.GreaterThanOrEqualTo(0f));
        Assert.That(float.IsNaN(y[7]));
    }

    [Test]
    public void ExpM1NearZeroIsWithinTwoUlpOfDoubleExpAndExactAtZero()
    {
        var lanes = new float[16];
        double worst = 0;
        for (double x = -PpoMath.NearZeroLimit; x <= PpoMath.NearZeroLimit; x += 1e-4)
        {
            for (int j = 0; j < 16; j++) lanes[j] = (float)Math.Clamp(x + j * 3e-6, -PpoMath.NearZeroLimit, PpoMath.NearZeroLimit);
            var q = PpoMath.ExpM1NearZero(Vector512.Create(lanes));
            for (int j = 0; j < 16; j++)
            {
                // Error relative to the ratio e^x (what the loss uses), as for Exp.
                double e = Math.Exp(lanes[j]);
                worst = Math.Max(worst, Math.Abs(q[j] + 1.0 - e) / e);
            }
        }

        Assert.That(worst, Is.LessThan(2 * 6e-8));
        Assert.That(PpoMath.ExpM1NearZero(Vector512<float>.Zero), Is.EqualTo(Vector512<float>.Zero));
        Assert.That(PpoMath.ExpM1NearZero(Vector512.Create(1e-7f))[0], Is.EqualTo(1e-7f).Within(1e-13f));
    }
}
