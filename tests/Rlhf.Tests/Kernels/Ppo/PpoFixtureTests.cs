using Rlhf.Kernels.Ppo;
using Rlhf.Tests.Support;
using static Rlhf.Tests.Kernels.Ppo.PpoTestData;

namespace Rlhf.Tests.Kernels.Ppo;

/// <summary>The kernels against tests/reference/kernels_ppo.py (TRL's formulas in PyTorch).</summary>
public class PpoFixtureTests
{
    private const double Rel = 1e-5, Abs = 1e-6;

    /// <summary>The oracle keeps TRL's values at masked positions; the kernels write 0 there.</summary>
    private static double[] ZeroMasked(double[] x, float[] mask)
    {
        var y = (double[])x.Clone();
        for (int i = 0; i < y.Length; i++) if (mask[i] == 0) y[i] = 0;
        return y;
    }

    [Test]
    public void PolicyAndValueLoss()
    {
        var f = Fixture.Load("ppo_loss");
        int batch = f["shape"].AsInts()[0], steps = f["shape"].AsInts()[1];
        var mask = f["mask"].AsFloats();
        var grad = new float[batch * steps];
        var s = PolicyLoss.Compute(f["logprobs"].AsFloats(), f["old_logprobs"].AsFloats(), f["advantages"].AsFloats(), mask, grad,
            batch, steps, (float)f["cliprange"].Scalar);
        AssertClose(f["pg_loss"].Scalar, s.Loss, Rel, Abs, "pg_loss");
        AssertClose(f["pg_clipfrac"].Scalar, s.ClipFraction, Rel, Abs, "pg_clipfrac");
        AssertClose(f["approxkl"].Scalar, s.ApproxKl, Rel, Abs, "approxkl");
        AssertClose(f["mean_ratio"].Scalar, s.MeanRatio, Rel, Abs, "mean ratio");
        Assert.That(s.ClipFraction, Is.GreaterThan(0.2f), "the fixture must exercise clipping");
        AssertClose(f["pg_grad"].Data, grad, Rel, 1e-8, "pg_grad");

        var vs = ValueLoss.Compute(f["vpreds"].AsFloats(), f["values"].AsFloats(), f["returns"].AsFloats(), mask, grad,
            batch, steps, (float)f["cliprange_value"].Scalar);
        AssertClose(f["vf_loss"].Scalar, vs.Loss, Rel, Abs, "vf_loss");
        AssertClose(f["vf_clipfrac"].Scalar, vs.ClipFraction, Rel, Abs, "vf_clipfrac");
        AssertClose(f["vf_error"].Scalar, vs.MeanSquaredError, Rel, Abs, "vf_error");
        AssertClose(f["vf_grad"].Data, grad, Rel, 1e-8, "vf_grad");

        var nc = ValueLoss.Compute(f["vpreds"].AsFloats(), f["values"].AsFloats(), f["returns"].AsFloats(), mask, grad,
            batch, steps, float.PositiveInfinity);
        AssertClose(f["vf_loss_noclip"].Scalar, nc.Loss, Rel, Abs, "vf_loss without clipping");
        AssertClose(f["vf_grad_noclip"].Data, grad, Rel, 1e-8, "vf_grad without clipping");
    }

    [Test]
    public void RewardsGaeAndWhitening()
    {
        var f = Fixture.Load("ppo_gae");
        int batch = f["shape"].AsInts()[0], steps = f["shape"].AsInts()[1];
        var mask = f["mask"].AsFloats();
        var lp = f["logprobs"].AsFloats();
        var rlp = f["ref_logprobs"].AsFloats();
        var kl = new float[lp.Length];
        for (int i = 0; i < kl.Length; i++) kl[i] = lp[i] - rlp[i];
        var rewards = new float[kl.Length];
        PpoRewards.Compute(kl, f["scores"].AsFloats(), mask, rewards, batch, steps, (float)f["kl_coef"].Scalar);
        AssertClose(f["rewards"].Data, rewards, Rel, Abs, "rewards");

        var white = new float[kl.Length];
        MaskedWhitening.Whiten(rewards, mask, white, shiftMean: false);
        AssertClose(ZeroMasked(f["rewards_whitened_noshift"].Data, mask), white, Rel, Abs, "whitened rewards (shift_mean=False)");

        var r32 = f["rewards_f32"].AsFloats();
        var values = f["values"].AsFloats();
        var adv = new float[kl.Length];
        var ret = new float[kl.Length];
        foreach (var name in new[] { "a", "b", "c", "d", "e" })
        {
            float gamma = (float)f[$"gamma_{name}"].Scalar, lam = (float)f[$"lam_{name}"].Scalar;
            Gae.Compute(r32, values, mask, adv, ret, batch, steps, gamma, lam);
            AssertClose(ZeroMasked(f[$"advantages_{name}"].Data, mask), adv, Rel, 1e-5, $"advantages γ={gamma} λ={lam}");
            AssertClose(ZeroMasked(f[$"returns_{name}"].Data, mask), ret, Rel, 1e-5, $"returns γ={gamma} λ={lam}");
            MaskedWhitening.Whiten(adv, mask, adv);
            AssertClose(ZeroMasked(f[$"advantages_whitened_{name}"].Data, mask), adv, Rel, 1e-5, $"whitened advantages γ={gamma} λ={lam}");
        }
    }
}
