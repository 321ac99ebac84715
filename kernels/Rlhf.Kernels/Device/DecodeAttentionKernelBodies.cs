using ILGPU;
using ILGPU.Algorithms;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Attention of new queries over a KV cache for decoding (keys/values [b, kv, capacity, hd], key mask [b, capacity]),
/// with the online-softmax recurrence of <see cref="AttentionKernelBodies.Forward"/>: the query at new step t of a
/// chunk starting at cache position past sees keys j ≤ past + t whose mask is 1; none visible gives 0.
/// </summary>
internal static class DecodeAttentionKernelBodies
{
    internal struct Shape
    {
        public int Tn, Past, Cap, H, Kv, Hd;
        public float Scale;
    }

    /// <summary>Index over [b, tn, kv, hd]: copies the new keys and values out of qkv into cache slots past..past+tn.</summary>
    public static void Append(Index1D index, ArrayView<float> qkv, ArrayView<float> keys, ArrayView<float> values, Shape s)
    {
        int d = index % s.Hd, kvh = (index / s.Hd) % s.Kv, t = (index / (s.Hd * s.Kv)) % s.Tn, b = index / (s.Hd * s.Kv * s.Tn);
        long src = (long)(b * s.Tn + t) * (s.H + 2 * s.Kv) * s.Hd + kvh * s.Hd + d;
        long dst = ((long)(b * s.Kv + kvh) * s.Cap + s.Past + t) * s.Hd + d;
        keys[dst] = qkv[src + s.H * s.Hd];
        values[dst] = qkv[src + (s.H + s.Kv) * s.Hd];
    }

    /// <summary>One thread per (b, h, new step t): output [b, tn, h·hd].</summary>
    public static void Forward(Index1D index, ArrayView<float> qkv, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> keyMask,
        ArrayView<float> output, Shape s)
    {
        int t = index % s.Tn, h = (index / s.Tn) % s.H, b = index / (s.Tn * s.H);
        int kvh = h / (s.H / s.Kv);
        long q = (long)(b * s.Tn + t) * (s.H + 2 * s.Kv) * s.Hd + h * s.Hd;
        long o = (long)(b * s.Tn + t) * s.H * s.Hd + h * s.Hd;
        long kv = (long)(b * s.Kv + kvh) * s.Cap * s.Hd;
        for (int d = 0; d < s.Hd; d++) output[o + d] = 0f;
        float m = float.NegativeInfinity, l = 0f;
        int visible = s.Past + t;
        for (int j = 0; j <= visible; j++)
        {
            if (keyMask[b * s.Cap + j] == 0f) continue;
            long kj = kv + (long)j * s.Hd;
            float dot = 0f;
            for (int d = 0; d < s.Hd; d++) dot += qkv[q + d] * keys[kj + d];
            float sc = s.Scale * dot;
            float mNew = XMath.Max(m, sc);
            float correction = XMath.Exp(m - mNew), p = XMath.Exp(sc - mNew);
            l = l * correction + p;
            for (int d = 0; d < s.Hd; d++) output[o + d] = output[o + d] * correction + p * values[kj + d];
            m = mNew;
        }

        if (l > 0f)
        {
            float inv = 1f / l;
            for (int d = 0; d < s.Hd; d++) output[o + d] *= inv;
        }
    }
}
