using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rlhf.Kernels.Vocabulary;

/// <summary>
/// exp over [<see cref="MinArgument"/>, 1] with ≤ 2e-7 relative error on [−16, 1] and ≤ 4e-7 below (where a term is
/// below e^−16 of its row's largest and its error is invisible in a sum), 9 vector operations: callers clamp the
/// argument first (the vocabulary kernels only ever need exp of x − max ≤ 0), so the full-range special cases are
/// skipped; the reduction uses one ln 2 constant and the polynomial is degree 5.
/// </summary>
internal static class FastExp
{
    /// <summary>
    /// Arguments are clamped here by callers: exp(−86) ≈ 4.5e−38 is still a normal float, so neither this
    /// function nor the sums that follow ever produce subnormals (which cost a microcode assist each).
    /// </summary>
    public const float MinArgument = -86f;

    private const float Log2E = 1.44269504088896341f;
    // float(ln 2) is within 1.9e−9 of ln 2, so r = x − n·ln2 in one FMA is off by at most |n|·1.9e−9 ≤ 2.4e−7
    // (|n| ≤ 125), and by ≤ 4.4e−8 for the terms that matter (x ≥ −16); Cody–Waite's second constant is not worth its FMA.
    private const float Ln2 = 0.693147182f;
    // 1.5·2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits.
    private const float Shifter = 12582912f;

    // Degree-5 relative-minimax fit of exp on [−ln2/2, ln2/2] (Lawson-weighted least squares, numpy; 9.1e−8 there).
    private const float C1 = 9.999997020e-01f;
    private const float C2 = 4.999915063e-01f;
    private const float C3 = 1.666763574e-01f;
    private const float C4 = 4.189793020e-02f;
    private const float C5 = 8.290315047e-03f;

    /// <summary>
    /// exp(x) for x in [<see cref="MinArgument"/>, 1]; NaN gives NaN; above the range the result is wrong. Below it,
    /// with AVX-512 (vscalefps), x down to −2^22·ln 2 still gives e^x (subnormal or 0) and lower x gives 0 or a
    /// non-finite value, never a wrong finite one (the unclamped first passes of the KL and softmax row scans rely on
    /// this); without AVX-512 the exponent wraps there and the result is wrong.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var k = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(Shifter));
        var n = k - Vector512.Create(Shifter);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2), x);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C5), r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        // p·2^n: vscalefps does it in one instruction; otherwise shift n (the low bits of k) into the exponent field.
        if (Avx512F.IsSupported) return Avx512F.Scale(p, n);
        var scale = (Vector512.ShiftLeft(k.AsInt32(), 23) + Vector512.Create(127 << 23)).AsSingle();
        return p * scale;
    }
}
