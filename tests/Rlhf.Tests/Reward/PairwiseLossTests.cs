using Rlhf.Reward;

namespace Rlhf.Tests.Reward;

public class PairwiseLossTests
{
    [Test]
    public void HardLabels_AreMinusLogSigmoidOfTheDifference()
    {
        float[] chosen = [1.5f, -0.25f, 3f], rejected = [0.5f, 0.75f, 3f];
        var gc = new float[3];
        var gr = new float[3];
        var (loss, accuracy) = PairwiseLoss.Compute(chosen, rejected, [], [], gc, gr);
        double expected = (-Math.Log(1 / (1 + Math.Exp(-1.0))) - Math.Log(1 / (1 + Math.Exp(1.0))) + Math.Log(2)) / 3;
        Assert.That(loss, Is.EqualTo(expected).Within(1e-12));
        Assert.That(accuracy, Is.EqualTo(1.0 / 3));
    }

    [Test]
    public void Gradient_MatchesCentralDifferences_WithMarginsAndSoftLabels()
    {
        var rng = new Random(7);
        int n = 9;
        float[] chosen = new float[n], rejected = new float[n], margins = new float[n], prefs = new float[n];
        for (int i = 0; i < n; i++)
        {
            chosen[i] = (float)(rng.NextDouble() * 6 - 3);
            rejected[i] = (float)(rng.NextDouble() * 6 - 3);
            margins[i] = (float)rng.NextDouble();
            prefs[i] = (float)rng.NextDouble();
        }

        var gc = new float[n];
        var gr = new float[n];
        PairwiseLoss.Compute(chosen, rejected, margins, prefs, gc, gr);
        const float h = 1e-2f;
        for (int i = 0; i < n; i++)
        {
            foreach (var (values, grad) in new[] { (chosen, gc), (rejected, gr) })
            {
                float saved = values[i];
                values[i] = saved + h;
                double plus = PairwiseLoss.Compute(chosen, rejected, margins, prefs, new float[n], new float[n]).Loss;
                values[i] = saved - h;
                double minus = PairwiseLoss.Compute(chosen, rejected, margins, prefs, new float[n], new float[n]).Loss;
                values[i] = saved;
                Assert.That(grad[i], Is.EqualTo((plus - minus) / (2 * h)).Within(1e-5), $"pair {i}");
            }
        }
    }

    [Test]
    public void SoftLabelOfOneHalf_IsMinimisedAtEqualRewards()
    {
        var gc = new float[1];
        PairwiseLoss.Compute([2f], [2f], [], [0.5f], gc, new float[1]);
        Assert.That(gc[0], Is.EqualTo(0f));
    }

    [Test]
    public void LargeDifferences_StayFinite()
    {
        var gc = new float[2];
        var (loss, _) = PairwiseLoss.Compute([1000f, -1000f], [-1000f, 1000f], [], [], gc, new float[2]);
        Assert.That(loss, Is.EqualTo(1000.0).Within(1e-9));
        Assert.That(gc, Is.EqualTo(new[] { 0f, -0.5f }));
    }

    [Test]
    public void BadArguments_NameTheArgumentAndIndex()
    {
        var e1 = Assert.Throws<ArgumentException>(() => PairwiseLoss.Compute([1f, 2f], [1f], [], [], new float[2], new float[2]));
        Assert.That(e1!.ParamName, Is.EqualTo("rejected"));
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => PairwiseLoss.Compute([1f, 2f], [1f, 0f], [], [0.5f, 1.5f], new float[2], new float[2]));
        Assert.That(e2!.Message, Does.Contain("preferences[1] = 1.5"));
    }
}

public class PairwiseLossFixtureTests
{
    [Test]
    public void MatchesPyTorch()
    {
        var f = Rlhf.Tests.Support.Fixture.Load("reward_pairwise_loss");
        float[] chosen = f["chosen"].AsFloats(), rejected = f["rejected"].AsFloats();
        var gc = new float[chosen.Length];
        var gr = new float[chosen.Length];
        var (loss, _) = PairwiseLoss.Compute(chosen, rejected, f["margins"].AsFloats(), f["preferences"].AsFloats(), gc, gr);
        Assert.That(loss, Is.EqualTo(f["loss"].Scalar).Within(1e-5 * Math.Abs(f["loss"].Scalar)));
        var expectedChosen = f["grad_chosen"].Data;
        var expectedRejected = f["grad_rejected"].Data;
        for (int i = 0; i < gc.Length; i++)
        {
            Assert.That(gc[i], Is.EqualTo(expectedChosen[i]).Within(1e-5 * Math.Abs(expectedChosen[i]) + 1e-7), $"grad_chosen[{i}]");
            Assert.That(gr[i], Is.EqualTo(expectedRejected[i]).Within(1e-5 * Math.Abs(expectedRejected[i]) + 1e-7), $"grad_rejected[{i}]");
        }
    }
}
