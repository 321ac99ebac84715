using Rlhf.Kernels.Ppo;

namespace Rlhf.Tests.Kernels.Ppo;

public class EntropyBonusTests
{
    [Test]
    public void GradientIsMinusCoefOverValidAtValidTokensAndTheMeanIsMasked()
    {
        float[] entropy = [1f, 2f, float.NaN, 4f];
        float[] mask = [1f, 0f, 0f, 1f];
        var grad = new float[4];
        double mean = EntropyBonus.Gradient(entropy, mask, valid: 2, coef: 0.5f, grad);
        Assert.That(mean, Is.EqualTo(2.5));
        Assert.That(grad, Is.EqualTo(new[] { -0.25f, 0f, 0f, -0.25f }));
        Assert.That(EntropyBonus.Gradient(entropy, new float[4], valid: 0, coef: 0.5f, grad), Is.EqualTo(0.0));
        Assert.That(grad, Is.All.EqualTo(0f));
    }

    [Test]
    public void LengthMismatchNamesTheArgument()
    {
        var ex = Assert.Throws<ArgumentException>(() => EntropyBonus.Gradient(new float[3], new float[4], 1, 0.1f, new float[4]));
        Assert.That(ex!.ParamName, Is.EqualTo("entropy"));
    }
}
