using System.Buffers;
using System.Numerics.Tensors;

namespace Rlhf.Model;

/// <summary>GPT-2's LayerNorm over the last dimension (vectorized per row with TensorPrimitives, fp32 like torch).</summary>
public static class LayerNorm
{
    /// <summary>
    /// x [n,c] -> y [n,c], mean [n], rstd [n]. Effectively y = (x − mean)·rstd·w + b with rstd = 1/√(var + eps)
    /// (biased variance, as torch). A NaN/±Inf in a row makes that row NaN.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, Span<float> mean, Span<float> rstd, int n, int c, float eps)
    {
        w = w[..c];
        b = b[..c];
        for (int i = 0; i < n; i++)
        {
            var xr = x.Slice(i * c, c);
            var yr = y.Slice(i * c, c);
            float m = TensorPrimitives.Sum(xr) / c;
            TensorPrimitives.Subtract(xr, m, yr);
            float r = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares<float>(yr) / c + eps);
            TensorPrimitives.Multiply(yr, r, yr);
            TensorPrimitives.MultiplyAdd(yr, w, b, yr);
            mean[i] = m;
            rstd[i] = r;
        }
    }

    /// <summary>dy [n,c] -> dx [n,c] (added), dw [c] += Σ dy·x̂, db [c] += Σ dy (empty dw/db skip them).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, Span<float> db, int n, int c)
    {
        w = w[..c];
        float[] rented = ArrayPool<float>.Shared.Rent(2 * c);
        var xh = rented.AsSpan(0, c);
        var dn = rented.AsSpan(c, c);
        for (int i = 0; i < n; i++)
        {
            var dyr = dy.Slice(i * c, c);
            var dxr = dx.Slice(i * c, c);
            float r = rstd[i];
            TensorPrimitives.Subtract(x.Slice(i * c, c), mean[i], xh);
            TensorPrimitives.Multiply(xh, r, xh);
            TensorPrimitives.Multiply(w, dyr, dn);
            float meanD = TensorPrimitives.Sum<float>(dn) / c;
            float meanDx = TensorPrimitives.Dot<float>(dn, xh) / c;
            TensorPrimitives.Subtract(dn, meanD, dn);
            TensorPrimitives.MultiplyAdd(xh, -meanDx, dn, dn);
            TensorPrimitives.MultiplyAdd(dn, r, dxr, dxr);
            if (!dw.IsEmpty) TensorPrimitives.MultiplyAdd(dyr, xh, dw[..c], dw[..c]);
            if (!db.IsEmpty) TensorPrimitives.Add(db[..c], dyr, db[..c]);
        }

        ArrayPool<float>.Shared.Return(rented);
    }
}

/// <summary>Llama's RMSNorm: y = x·rstd·w with rstd = 1/√(mean(x²) + eps).</summary>
public static class RmsNorm
{
    /// <summary>x [n,c] -> y [n,c], rstd [n]. A NaN/±Inf in a row makes that row NaN.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int n, int c, float eps)
    {
        w = w[..c];
        for (int i = 0; i < n; i++)
        {
            var xr = x.Slice(i * c, c);
            var yr = y.Slice(i * c, c);
            float r = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / c + eps);
            TensorPrimitives.Multiply(xr, r, yr);
            TensorPrimitives.Multiply(yr, w, yr);
            rstd[i] = r;
        }
    }

    /// <summary>dy [n,c] -> dx [n,c] (added), dw [c] += Σ dy·x·rstd (empty dw skips it).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dw, int n, int c)
    {
        w = w[..c];
        float[] rented = ArrayPool<float>.Shared.Rent(c);
        var dn = rented.AsSpan(0, c);
        for (int i = 0; i < n; i++)
        {
            var dyr = dy.Slice(i * c, c);
            var xr = x.Slice(i * c, c);
            var dxr = dx.Slice(i * c, c);
            float r = rstd[i];
            TensorPrimitives.Multiply(w, dyr, dn);
            float k = TensorPrimitives.Dot<float>(dn, xr) * r * r * r / c;
            TensorPrimitives.MultiplyAdd(dn, r, dxr, dxr);
            TensorPrimitives.MultiplyAdd(xr, -k, dxr, dxr);
            if (!dw.IsEmpty)
            {
                TensorPrimitives.Multiply(dyr, xr, dn);
                TensorPrimitives.MultiplyAdd(dn, r, dw[..c], dw[..c]);
            }
        }

        ArrayPool<float>.Shared.Return(rented);
    }
}
