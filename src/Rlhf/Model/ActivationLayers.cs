using System.Numerics.Tensors;

namespace Rlhf.Model;

/// <summary>GPT-2's GELU, tanh approximation ("gelu_new"), vectorized in stack blocks.</summary>
public static class GeluTanh
{
    private const float S = 0.7978845608028654f; // √(2/π)
    private const float C = 0.044715f;
    private const int Block = 256;

    /// <summary>x [n] -> y [n]: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))). NaN stays NaN.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException($"y has {y.Length} elements, needs {x.Length}.", nameof(y));
        Span<float> t = stackalloc float[Block];
        for (int s = 0; s < x.Length; s += Block)
        {
            int len = Math.Min(Block, x.Length - s);
            var xs = x.Slice(s, len);
            var ts = t[..len];
            TensorPrimitives.Multiply(xs, xs, ts);
            TensorPrimitives.Multiply(ts, S * C, ts);
            TensorPrimitives.Add(ts, S, ts);
            TensorPrimitives.Multiply(ts, xs, ts);
            TensorPrimitives.Tanh(ts, ts);
            TensorPrimitives.Add(ts, 1f, ts);
            TensorPrimitives.Multiply(ts, xs, ts);
            TensorPrimitives.Multiply(ts, 0.5f, y.Slice(s, len));
        }
    }

    /// <summary>x [n], dy [n] -> dx [n] (overwritten) = dy·gelu'(x).</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dx.Length < x.Length) throw new ArgumentException($"dx has {dx.Length} elements, needs {x.Length}.", nameof(dx));
        Span<float> buf = stackalloc float[3 * Block];
        for (int s = 0; s < x.Length; s += Block)
        {
            int len = Math.Min(Block, x.Length - s);
            var xs = x.Slice(s, len);
            var x2 = buf.Slice(0, len);
            var th = buf.Slice(Block, len);
            var g = buf.Slice(2 * Block, len);
            TensorPrimitives.Multiply(xs, xs, x2);
            TensorPrimitives.Multiply(x2, S * C, th);
            TensorPrimitives.Add(th, S, th);
            TensorPrimitives.Multiply(th, xs, th);            // u = S(x + Cx³)
            TensorPrimitives.Tanh(th, th);
            TensorPrimitives.Multiply(x2, 3f * S * C, x2);
            TensorPrimitives.Add(x2, S, x2);                 // du/dx = S(1 + 3Cx²)
            TensorPrimitives.Multiply(th, th, g);
            TensorPrimitives.Multiply(g, -1f, g);
            TensorPrimitives.Add(g, 1f, g);                  // sech² u
            TensorPrimitives.Multiply(g, x2, g);
            TensorPrimitives.Multiply(g, xs, g);
            TensorPrimitives.Add(g, th, g);
            TensorPrimitives.Add(g, 1f, g);                  // 2·gelu'(x)
            TensorPrimitives.Multiply(g, dy.Slice(s, len), g);
            TensorPrimitives.Multiply(g, 0.5f, dx.Slice(s, len));
        }
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
