namespace Rlhf.Model;

/// <summary>GPT-2's GELU, tanh approximation ("gelu_new").</summary>
public static class GeluTanh
{
    private const float S = 0.7978845608028654f; // √(2/π)

    /// <summary>x [n] -> y [n]: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))). NaN stays NaN; ±Inf gives +Inf / 0·(−Inf)=NaN.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(S * (v + 0.044715f * v * v * v)));
        }
    }

    /// <summary>x [n], dy [n] -> dx [n] (overwritten) = dy·gelu'(x).</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float u = S * (v + 0.044715f * v * v * v);
            float th = MathF.Tanh(u);
            float sech2 = 1f - th * th;
            float grad = 0.5f * (1f + th) + 0.5f * v * sech2 * S * (1f + 3f * 0.044715f * v * v);
            dx[i] = dy[i] * grad;
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
            for (int j = 0; j < f; j++) yr[j] = g[j] / (1f + MathF.Exp(-g[j])) * u[j];
        }
    }

    /// <summary>gateUp [n,2f], dy [n,f] -> dGateUp [n,2f] (overwritten).</summary>
    public static void Backward(ReadOnlySpan<float> gateUp, ReadOnlySpan<float> dy, Span<float> dGateUp, int n, int f)
    {
        for (int i = 0; i < n; i++)
        {
            var g = gateUp.Slice(i * 2 * f, f);
            var u = gateUp.Slice(i * 2 * f + f, f);
            var dyr = dy.Slice(i * f, f);
            var dg = dGateUp.Slice(i * 2 * f, f);
            var du = dGateUp.Slice(i * 2 * f + f, f);
            for (int j = 0; j < f; j++)
            {
                float s = 1f / (1f + MathF.Exp(-g[j]));
                float silu = g[j] * s;
                du[j] = dyr[j] * silu;
                dg[j] = dyr[j] * u[j] * s * (1f + g[j] * (1f - s));
            }
        }
    }
}
