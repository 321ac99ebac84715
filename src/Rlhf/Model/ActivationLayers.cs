using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>
/// GPT-2's GELU, tanh approximation ("gelu_new"), in one fused vector pass. Uses ½(1 + tanh u) = σ(2u), so the
/// forward is y = x·σ(2u) with one exponential per element and no tanh.
/// </summary>
public static class GeluTanh
{
    private const float S = 0.7978845608028654f; // √(2/π)
    private const float C = 0.044715f;

    /// <summary>x [n] -> y [n]: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))). NaN stays NaN; +∞ gives +∞, −∞ gives NaN (∞·0, as the tanh form); large negative x gives −0.</summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException($"y has {y.Length} elements, needs {x.Length}.", nameof(y));
        int n = x.Length, i = 0;
        fixed (float* px = x, py = y)
        {
            i = Chunks(n, (nint)px, 0, (nint)py, forward: true);
            for (; i + 16 <= n; i += 16) Forward16(Vector512.Load(px + i)).Store(py + i);
            if (i < n)
            {
                // The tail through a zero-padded vector: the same arithmetic as the body.
                float* bx = stackalloc float[16];
                float* by = stackalloc float[16];
                for (int j = 0; j < 16; j++) bx[j] = i + j < n ? px[i + j] : 0f;
                Forward16(Vector512.Load(bx)).Store(by);
                for (int j = 0; i + j < n; j++) py[i + j] = by[j];
            }
        }
    }

    /// <summary>x [n], dy [n] -> dx [n] (overwritten) = dy·gelu'(x), gelu'(x) = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²), s = σ(2u).</summary>
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dx.Length < x.Length) throw new ArgumentException($"dx has {dx.Length} elements, needs {x.Length}.", nameof(dx));
        if (dy.Length < x.Length) throw new ArgumentException($"dy has {dy.Length} elements, needs {x.Length}.", nameof(dy));
        int n = x.Length, i = 0;
        fixed (float* px = x, pdy = dy, pdx = dx)
        {
            i = Chunks(n, (nint)px, (nint)pdy, (nint)pdx, forward: false);
            for (; i + 16 <= n; i += 16) Backward16(Vector512.Load(px + i), Vector512.Load(pdy + i)).Store(pdx + i);
            if (i < n)
            {
                float* bx = stackalloc float[16];
                float* bd = stackalloc float[16];
                float* bo = stackalloc float[16];
                for (int j = 0; j < 16; j++)
                {
                    bx[j] = i + j < n ? px[i + j] : 0f;
                    bd[j] = i + j < n ? pdy[i + j] : 0f;
                }

                Backward16(Vector512.Load(bx), Vector512.Load(bd)).Store(bo);
                for (int j = 0; i + j < n; j++) pdx[i + j] = bo[j];
            }
        }
    }

    /// <summary>
    /// For large n, the whole 16-vectors split into fixed contiguous chunks over threads (elementwise, so the bits do
    /// not depend on the split); returns how many leading elements were done, the rest is the caller's.
    /// </summary>
    private static unsafe int Chunks(int n, nint x, nint dy, nint dst, bool forward)
    {
        int vectors = n / 16;
        int threads = Math.Min(vectors, KernelParallelism.ThreadsFor(n, 1 << 16));
        if (threads <= 1) return 0;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int v0 = (int)((long)vectors * t / threads), v1 = (int)((long)vectors * (t + 1) / threads);
            float* px = (float*)x, pdy = (float*)dy, pd = (float*)dst;
            for (int v = v0; v < v1; v++)
            {
                int i = v * 16;
                if (forward) Forward16(Vector512.Load(px + i)).Store(pd + i);
                else Backward16(Vector512.Load(px + i), Vector512.Load(pdy + i)).Store(pd + i);
            }
        });
        return vectors * 16;
    }

    /// <summary>σ(2u) for u = S(x + Cx³), as 1 / (1 + exp(−2u)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Sigmoid2U(Vector512<float> x)
    {
        var x2 = x * x;
        var minus2u = x * Vector512.FusedMultiplyAdd(x2, Vector512.Create(-2f * S * C), Vector512.Create(-2f * S));
        return Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(minus2u));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Forward16(Vector512<float> x) => x * Sigmoid2U(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Backward16(Vector512<float> x, Vector512<float> dy)
    {
        var s = Sigmoid2U(x);
        var du = Vector512.FusedMultiplyAdd(x * x, Vector512.Create(3f * S * C), Vector512.Create(S));
        var g = Vector512.FusedMultiplyAdd(2f * x * s * (Vector512<float>.One - s), du, s);
        return dy * g;
    }
}

/// <summary>Llama's gated MLP activation: y = silu(gate)·up, reading the fused gate|up projection output.</summary>
public static class SwiGlu
{
    /// <summary>gateUp [n, 2f] (gate columns 0..f, up f..2f) -> y [n, f]: y = g·σ(g)·u.</summary>
    public static void Forward(ReadOnlySpan<float> gateUp, Span<float> y, int n, int f)
    {
        for (int i = 0; i < n; i++)
        {
            var g = gateUp.Slice(i * 2 * f, f);
            var u = gateUp.Slice(i * 2 * f + f, f);
            var yr = y.Slice(i * f, f);
            TensorPrimitives.Sigmoid(g, yr);
            TensorPrimitives.Multiply(yr, g, yr);
            TensorPrimitives.Multiply(yr, u, yr);
        }
    }

    /// <summary>gateUp [n,2f], dy [n,f] -> dGateUp [n,2f] (overwritten): du = dy·silu(g), dg = dy·u·σ(g)(1 + g(1 − σ(g))).</summary>
    public static void Backward(ReadOnlySpan<float> gateUp, ReadOnlySpan<float> dy, Span<float> dGateUp, int n, int f)
    {
        for (int i = 0; i < n; i++)
        {
            var g = gateUp.Slice(i * 2 * f, f);
            var u = gateUp.Slice(i * 2 * f + f, f);
            var dyr = dy.Slice(i * f, f);
            var dg = dGateUp.Slice(i * 2 * f, f);
            var du = dGateUp.Slice(i * 2 * f + f, f);
            TensorPrimitives.Sigmoid(g, dg);                 // s
            TensorPrimitives.Multiply(dg, g, du);            // silu
            TensorPrimitives.Multiply(du, dyr, du);          // du = dy·silu
            // dg = dy·u·(s + silu·(1 − s)) = dy·u·(s + silu − silu·s)
            for (int j = 0; j < f; j++)
            {
                float s = dg[j], silu = g[j] * s;
                dg[j] = dyr[j] * u[j] * (s + silu * (1f - s));
            }
        }
    }
}
