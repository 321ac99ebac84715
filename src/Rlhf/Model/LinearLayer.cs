using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>Dense projection forward/backward through <see cref="Gemm"/>, for both weight layouts.</summary>
public static class LinearLayer
{
    /// <summary>
    /// x [n,in], w [in,out] (Conv1D) or [out,in] (Linear), b [out] or empty -> y [n,out].
    /// Effectively computes y[i,o] = b[o] + Σ_k x[i,k]·W(k,o). NaN/±Inf propagate.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int n, int inDim, int outDim, bool conv1D)
    {
        Gemm.Multiply(x, w, y, n, outDim, inDim, transposeA: false, transposeB: !conv1D);
        if (b.IsEmpty) return;
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * outDim, outDim);
            TensorPrimitives.Add(row, b[..outDim], row);
        }
    }

    /// <summary>
    /// dy [n,out] -> dx [n,in] (overwritten, or added when <paramref name="accumulateDx"/>), dw += (layout of w),
    /// db [out] += Σ_i dy[i,:]. An empty dx/dw/db skips that product (frozen weights skip their GEMM).
    /// </summary>
    public static void Backward(
        ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        Span<float> dx, Span<float> dw, Span<float> db, int n, int inDim, int outDim, bool conv1D, bool accumulateDx = false)
    {
        if (!dx.IsEmpty)
            Gemm.Multiply(dy, w, dx, n, inDim, outDim, transposeA: false, transposeB: conv1D, accumulate: accumulateDx);
        if (!dw.IsEmpty)
        {
            if (conv1D) Gemm.Multiply(x, dy, dw, inDim, outDim, n, transposeA: true, transposeB: false, accumulate: true);
            else Gemm.Multiply(dy, x, dw, outDim, inDim, n, transposeA: true, transposeB: false, accumulate: true);
        }

        if (!db.IsEmpty)
        {
            for (int i = 0; i < n; i++) TensorPrimitives.Add(db[..outDim], dy.Slice(i * outDim, outDim), db[..outDim]);
        }
    }
}
