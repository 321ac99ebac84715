using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Ppo;

/// <summary>Vector math for the PPO kernels.</summary>
internal static class PpoMath
{
    /// <summary>
    /// e^x per lane in float: Cody–Waite reduction x = n·ln2 + r (|r| ≤ ½ln2), Cephes' degree-6 polynomial for e^r, then
    /// 2^n (vscalefps). Max relative error ≈ 2 ulp on [−86.6, 88.7]; inputs are clamped there (so
    /// x &gt; 88.72 gives +∞ and x &lt; −86.6 gives e^−86.6 ≈ 2.5e−38 instead of a smaller value); NaN propagates.
    /// About twice as fast as <see cref="Vector512.Exp(Vector512{float})"/>, which evaluates in double.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        // Native min/max (one instruction each): x86 returns the second operand when either is NaN, so with x second
        // a NaN flows on into the result.
        x = Vector512.MinNative(Vector512.Create(88.72284f), Vector512.MaxNative(Vector512.Create(-86.6f), x));
        var n = Vector512.Round(x * Vector512.Create(1.44269504088896341f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        var y = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        // y·2^n in one instruction (exact, and +∞ only where e^x overflows), else through the exponent bits:
        // n is an integer in [−125, 128] here, so the native conversion is exact, and 2·y·2^(n−1) because 2^128
        // itself is not a float although e^x still is (x up to 88.72).
        if (Avx512F.IsSupported) return Avx512F.Scale(y, n);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n) + Vector512.Create(126), 23).AsSingle();
        return (y + y) * scale;
    }
    /// <summary>Largest |x| that <see cref="ExpM1NearZero"/> accepts: ½·ln 2, the range Exp's reduction maps onto.</summary>
    public const float NearZeroLimit = 0.34657359f;

    /// <summary>
    /// e^x − 1 for |x| ≤ <see cref="NearZeroLimit"/> without range reduction: x·(1 + x·q(x)) with the degree-6
    /// relative-minimax polynomial of <c>Vocabulary.FastExp</c> (≈ 1 ulp of e^x there, and exactly 0 at x = 0, so
    /// masked lanes with x = 0 add nothing to sums of it). PPO's log-ratios are almost always this small, so the loss
    /// kernel tests a whole vector and skips the reduction, clamps and scaling of <see cref="Exp"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpM1NearZero(Vector512<float> x)
    {
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(1.384365372e-03f), x, Vector512.Create(8.374155499e-03f));
        p = Vector512.FusedMultiplyAdd(p, x, Vector512.Create(4.166800156e-02f));
        p = Vector512.FusedMultiplyAdd(p, x, Vector512.Create(1.666643173e-01f));
        p = Vector512.FusedMultiplyAdd(p, x, Vector512.Create(4.999999404e-01f));
        p = Vector512.FusedMultiplyAdd(p, x, Vector512<float>.One);
        return p * x;
    }

    /// <summary>True when all 64 mask entries from <paramref name="mask"/> are ±0 (masked); NaN counts as valid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe bool AllMasked64(float* mask)
    {
        var bits = Vector512.Load(mask).AsUInt32() | Vector512.Load(mask + 16).AsUInt32()
            | Vector512.Load(mask + 32).AsUInt32() | Vector512.Load(mask + 48).AsUInt32();
        return Vector512.EqualsAll(bits & Vector512.Create(0x7FFF_FFFFu), Vector512<uint>.Zero);
    }

    /// <summary>
    /// Loads 16 floats with the lanes where <paramref name="valid"/> is all-zero bits set to +0 (so NaN padding under
    /// the mask never enters the arithmetic): a zero-masking load on AVX-512, which costs no extra instruction.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<float> LoadValid(float* source, Vector512<float> valid)
        => Avx512F.IsSupported ? Avx512F.MaskLoad(source, valid, Vector512<float>.Zero) : valid & Vector512.Load(source);
}
