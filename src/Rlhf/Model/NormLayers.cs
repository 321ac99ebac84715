namespace Rlhf.Model;

/// <summary>GPT-2's LayerNorm over the last dimension; statistics in double so fp32 inputs of any scale stay accurate.</summary>
public static class LayerNorm
{
    /// <summary>
    /// x [n,c] -> y [n,c], mean [n], rstd [n]. Effectively y = (x − mean)·rstd·w + b with rstd = 1/√(var + eps)
    /// (biased variance, as torch). A NaN/±Inf in a row makes that row NaN.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, Span<float> mean, Span<float> rstd, int n, int c, float eps)
    {
        for (int i = 0; i < n; i++)
        {
            var xr = x.Slice(i * c, c);
            var yr = y.Slice(i * c, c);
            double s = 0;
            for (int j = 0; j < c; j++) s += xr[j];
            double m = s / c, v = 0;
            for (int j = 0; j < c; j++)
            {
                double dlt = xr[j] - m;
                v += dlt * dlt;
            }

            float r = (float)(1.0 / Math.Sqrt(v / c + eps));
            float mf = (float)m;
            for (int j = 0; j < c; j++) yr[j] = (xr[j] - mf) * r * w[j] + b[j];
            mean[i] = mf;
            rstd[i] = r;
        }
    }

    /// <summary>dy [n,c] -> dx [n,c] (added), dw [c] += Σ dy·x̂, db [c] += Σ dy (empty dw/db skip them).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, Span<float> db, int n, int c)
    {
        for (int i = 0; i < n; i++)
        {
            var dyr = dy.Slice(i * c, c);
            var xr = x.Slice(i * c, c);
            var dxr = dx.Slice(i * c, c);
            float m = mean[i], r = rstd[i];
            double sumD = 0, sumDx = 0;
            for (int j = 0; j < c; j++)
            {
                float xh = (xr[j] - m) * r;
                float dn = w[j] * dyr[j];
                sumD += dn;
                sumDx += dn * xh;
            }

            float meanD = (float)(sumD / c), meanDx = (float)(sumDx / c);
            for (int j = 0; j < c; j++)
            {
                float xh = (xr[j] - m) * r;
                float dn = w[j] * dyr[j];
                dxr[j] += (dn - meanD - xh * meanDx) * r;
            }

            if (!dw.IsEmpty)
                for (int j = 0; j < c; j++) dw[j] += dyr[j] * (xr[j] - m) * r;
            if (!db.IsEmpty)
                for (int j = 0; j < c; j++) db[j] += dyr[j];
        }
    }
}

/// <summary>Llama's RMSNorm: y = x·rstd·w with rstd = 1/√(mean(x²) + eps).</summary>
public static class RmsNorm
{
    /// <summary>x [n,c] -> y [n,c], rstd [n]. A NaN/±Inf in a row makes that row NaN.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int n, int c, float eps)
    {
        for (int i = 0; i < n; i++)
        {
            var xr = x.Slice(i * c, c);
            var yr = y.Slice(i * c, c);
            double ss = 0;
            for (int j = 0; j < c; j++) ss += (double)xr[j] * xr[j];
            float r = (float)(1.0 / Math.Sqrt(ss / c + eps));
            for (int j = 0; j < c; j++) yr[j] = w[j] * (xr[j] * r);
            rstd[i] = r;
        }
    }

    /// <summary>dy [n,c] -> dx [n,c] (added), dw [c] += Σ dy·x·rstd (empty dw skips it).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dw, int n, int c)
    {
        for (int i = 0; i < n; i++)
        {
            var dyr = dy.Slice(i * c, c);
            var xr = x.Slice(i * c, c);
            var dxr = dx.Slice(i * c, c);
            float r = rstd[i];
            double s = 0;
            for (int j = 0; j < c; j++) s += (double)w[j] * dyr[j] * xr[j];
            float k = (float)(s * r * r * r / c);
            for (int j = 0; j < c; j++) dxr[j] += w[j] * dyr[j] * r - xr[j] * k;
            if (!dw.IsEmpty)
                for (int j = 0; j < c; j++) dw[j] += dyr[j] * xr[j] * r;
        }
    }
}
