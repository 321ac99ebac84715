namespace Rlhf.Model;

/// <summary>
/// Rotary position embedding in HF's rotate_half convention: for i &lt; hd/2, the pair (x[i], x[i+hd/2]) is rotated
/// by angle pos·θ^(−2i/hd). The cos/sin table is built once per model for every position below the context length.
/// </summary>
public sealed class Rope
{
    private readonly float[] cos, sin;

    public Rope(int headDim, int contextLength, float theta)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "must be positive and even.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(contextLength);
        HeadDim = headDim;
        ContextLength = contextLength;
        int half = headDim / 2;
        long size = (long)contextLength * half;
        if (size > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, $"a RoPE table of {contextLength} positions × {half} does not fit one array.");
        cos = new float[size];
        sin = new float[size];
        for (int i = 0; i < half; i++)
        {
            // HF computes inv_freq and the angle in fp32; do the same so fixtures match at long positions.
            float invFreq = (float)(1.0 / Math.Pow(theta, (2.0 * i) / headDim));
            for (int p = 0; p < contextLength; p++)
            {
                float angle = p * invFreq;
                cos[p * half + i] = MathF.Cos(angle);
                sin[p * half + i] = MathF.Sin(angle);
            }
        }
    }

    public int HeadDim { get; }

    public int ContextLength { get; }

    /// <summary>
    /// x [n, rowStride] with <paramref name="heads"/> heads of HeadDim starting at <paramref name="columnOffset"/>,
    /// positions [n] -> rotated in place. <paramref name="inverse"/> applies the transpose rotation (the backward pass).
    /// </summary>
    public void Apply(Span<float> x, int rowStride, int columnOffset, int heads, ReadOnlySpan<int> positions, int n, bool inverse)
    {
        int hd = HeadDim, half = hd / 2;
        for (int r = 0; r < n; r++)
        {
            int pos = positions[r];
            if ((uint)pos >= (uint)ContextLength)
                throw new ArgumentOutOfRangeException(nameof(positions), pos, $"position at row {r} is outside [0, {ContextLength}).");
            var c = cos.AsSpan(pos * half, half);
            var s = sin.AsSpan(pos * half, half);
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice(r * rowStride + columnOffset + h * hd, hd);
                for (int i = 0; i < half; i++)
                {
                    float a = v[i], b = v[i + half];
                    float si = inverse ? -s[i] : s[i];
                    v[i] = a * c[i] - b * si;
                    v[i + half] = b * c[i] + a * si;
                }
            }
        }
    }
}
