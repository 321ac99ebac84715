using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Rlhf.Kernels.Vocabulary;
using static Rlhf.Tests.Kernels.Vocabulary.VocabularyTestData;

namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>The KL row scan first runs unclamped and falls back to the clamped scan on rows that need it.</summary>
public class KullbackLeiblerRowScanTests
{
    [Test]
    public void FastExp_BelowItsRange_GivesTheTinyValue_OrZero_OrNotFinite()
    {
        if (!Avx512F.IsSupported) Assert.Ignore("the unclamped scan is only used with AVX-512 (vscalefps)");
        float[] arguments = [-86.5f, -87.5f, -95f, -103f, -104f, -110f, -200f, -2e4f, -1e6f, -2.9e6f];
        foreach (float x in arguments)
        {
            float result = FastExp.Exp(Vector512.Create(x))[0];
            double exact = Math.Exp(x);
            // Relative 4e-7 while the result is a normal float; subnormal results keep their absolute precision.
            Assert.That(result, Is.EqualTo(exact).Within(Math.Max(4e-7 * exact, 1.5e-45)), $"exp({x})");
            Assert.That(result, Is.GreaterThanOrEqualTo(0f), $"exp({x})");
        }

        // Past −2^22·ln 2 the reduction fails: the result is still 0 (±) or it is not finite, never a wrong number.
        foreach (float x in new[] { -3e6f, -1e7f, -1e20f, -1e30f, float.MinValue, float.NegativeInfinity })
        {
            float result = FastExp.Exp(Vector512.Create(x))[0];
            Assert.That(result == 0f || !float.IsFinite(result), Is.True, $"exp({x}) = {result}");
        }

    }

    [Test]
    public void UnclampedScan_MatchesTheClampedScan_OnFiniteRows(
        [Values(3.0, 200.0, 2e4)] double scale, [Values(16, 1000, 20000)] int v, [Values(1f, 0.7f)] float temperature)
    {
        if (!Avx512F.IsSupported) Assert.Ignore("the unclamped scan is only used with AVX-512 (vscalefps)");
        var policy = Logits(3, v, seed: v, scale: scale);
        var reference = Logits(3, v, seed: v + 1, scale: scale);
        for (int row = 0; row < 3; row++)
        {
            var x = policy.AsSpan(row * v, v);
            var y = reference.AsSpan(row * v, v);
            var unclamped = KullbackLeiblerRowScan.Scan<Disabled>(x, y, 1f / temperature, false);
            var clamped = KullbackLeiblerRowScan.Scan<Enabled>(x, y, 1f / temperature, false);
            Assert.That(unclamped.Suspect, Is.False, $"row {row}");
            Assert.That(double.IsFinite(unclamped.Kl), Is.True, $"row {row}");
            Assert.That(unclamped.Kl, Is.EqualTo(clamped.Kl).Within(1e-12 * Math.Max(1, Math.Abs(clamped.Kl))), $"row {row}");
            Assert.That(KullbackLeiblerRowScan.Scan(x, y, 1f / temperature).Kl, Is.EqualTo(unclamped.Kl), $"row {row}: the fast scan's result stands");
        }
    }

    [Test]
    public void RowsWithBannedTokens_FallBackToTheClampedScan([Values(1000, 20000)] int v, [Values(true, false)] bool policyBans)
    {
        var policy = Logits(1, v, seed: v);
        var reference = Logits(1, v, seed: v + 1);
        (policyBans ? policy : reference)[v / 3] = float.NegativeInfinity;
        if (Avx512F.IsSupported)
        {
            var unclamped = KullbackLeiblerRowScan.Scan<Disabled>(policy, reference, 1f, false);
            Assert.That(unclamped.Suspect || !double.IsFinite(unclamped.Kl), Is.True, "the unclamped scan must reject the row");
        }

        var clamped = KullbackLeiblerRowScan.Scan<Enabled>(policy, reference, 1f, false);
        var result = KullbackLeiblerRowScan.Scan(policy, reference, 1f);
        Assert.That(result.Kl, Is.EqualTo(clamped.Kl));
        Assert.That(result.Suspect, Is.EqualTo(clamped.Suspect));
        // Only the reference banning a token the policy can pick makes KL infinite.
        Assert.That(double.IsPositiveInfinity(result.Kl), Is.EqualTo(!policyBans));
    }
}
