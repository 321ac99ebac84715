using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Linear;

/// <summary>
/// Copies blocks of A and B into the panel layouts the micro-kernel reads, absorbing the transpose flags so that one
/// micro-kernel serves NN, NT, TN and TT. Panels past the matrix edge are zero-padded so edge tiles run the same
/// kernel; the padded rows/columns of the tile (zeros, or NaN from 0·Inf) are never written back to C.
/// </summary>
internal static unsafe class GemmPacking
{
    private const int MR = GemmMicroKernel.Rows;
    private const int NR = GemmMicroKernel.Columns;

    /// <summary>
    /// Packs op(A)[i0..i0+rows, p0..p0+depth] into panels of MR rows: panel r starts at dst + r·MR·depth, laid out [depth][MR].
    /// A is stored [m, k] (or [k, m] when <paramref name="transposed"/>).
    /// </summary>
    public static void PackA(float* a, bool transposed, int m, int k, int i0, int rows, int p0, int depth, float* dst)
    {
        for (int r = 0; r < rows; r += MR)
        {
            int h = Math.Min(MR, rows - r);
            float* panel = dst + (nint)r * depth;
            if (transposed)
            {
                // Column p of op(A) is a contiguous run of stored row p: a straight copy per k step.
                float* src = a + (nint)p0 * m + i0 + r;
                if (h == MR && i0 + r + 16 <= m)
                {
                    // 16-wide copies: the 2 extra floats land in the next k step's slots, which that step overwrites;
                    // only the last step spills, so it is copied by hand. Reads stay inside row p (checked above).
                    for (int p = 0; p < depth - 1; p++, src += m, panel += MR) Vector512.Load(src).Store(panel);
                    for (int ii = 0; ii < MR; ii++) panel[ii] = src[ii];
                    continue;
                }

                for (int p = 0; p < depth; p++, src += m, panel += MR)
                {
                    int ii = 0;
                    for (; ii < h; ii++) panel[ii] = src[ii];
                    for (; ii < MR; ii++) panel[ii] = 0f;
                }
            }
            else
            {
                // Row-major A: each stored row becomes one strided lane of the panel.
                int done = 0;
                if (h == MR && GemmTranspose.IsSupported)
                {
                    // 16×16 transposes of 14 rows (2 zero rows); each 16-float store overlaps the next k step's
                    // slots by 2, which the next store rewrites (the buffer has room for the last one's spill).
                    float* src = a + (nint)(i0 + r) * k + p0;
                    for (; done + 16 <= depth; done += 16) GemmTranspose.Block16(src + done, k, MR, panel + (nint)done * MR, MR);
                }

                for (int ii = 0; ii < MR; ii++)
                {
                    float* d = panel + ii;
                    if (ii < h)
                    {
                        float* src = a + (nint)(i0 + r + ii) * k + p0;
                        for (int p = done; p < depth; p++) d[(nint)p * MR] = src[p];
                    }
                    else
                    {
                        for (int p = done; p < depth; p++) d[(nint)p * MR] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs op(B)[p0..p0+depth, j0..j0+cols] into panels of NR columns: panel s starts at dst + s·NR·depth, laid out [depth][NR].
    /// B is stored [k, n] (or [n, k] when <paramref name="transposed"/>).
    /// </summary>
    public static void PackB(float* b, bool transposed, int n, int k, int p0, int depth, int j0, int cols, float* dst)
    {
        for (int s = 0; s < cols; s += NR)
        {
            int w = Math.Min(NR, cols - s);
            float* panel = dst + (nint)s * depth;
            if (!transposed)
            {
                float* src = b + (nint)p0 * n + j0 + s;
                if (w == NR)
                {
                    for (int p = 0; p < depth; p++, src += n, panel += NR)
                    {
                        Vector512.Load(src).Store(panel);
                        Vector512.Load(src + 16).Store(panel + 16);
                    }
                }
                else
                {
                    for (int p = 0; p < depth; p++, src += n, panel += NR)
                    {
                        int jj = 0;
                        for (; jj < w; jj++) panel[jj] = src[jj];
                        for (; jj < NR; jj++) panel[jj] = 0f;
                    }
                }
            }
            else if (w == NR)
            {
                TransposeFullPanel(b + (nint)(j0 + s) * k + p0, k, depth, panel);
            }
            else
            {
                for (int jj = 0; jj < NR; jj++)
                {
                    float* d = panel + jj;
                    if (jj < w)
                    {
                        float* src = b + (nint)(j0 + s + jj) * k + p0;
                        for (int p = 0; p < depth; p++) d[(nint)p * NR] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < depth; p++) d[(nint)p * NR] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Transposes 32 stored rows (stride <paramref name="k"/>) × <paramref name="depth"/> into a [depth][32] panel.
    /// This is the forward pass's x·Wᵀ case: 16×16 register transposes, then a strided copy of the k tail.
    /// </summary>
    private static void TransposeFullPanel(float* src, int k, int depth, float* panel)
    {
        int done = 0;
        if (GemmTranspose.IsSupported)
        {
            for (; done + 16 <= depth; done += 16)
            {
                GemmTranspose.Block16(src + done, k, 16, panel + (nint)done * NR, NR);
                GemmTranspose.Block16(src + (nint)16 * k + done, k, 16, panel + (nint)done * NR + 16, NR);
            }
        }

        for (int jj = 0; jj < NR; jj++)
        {
            float* s = src + (nint)jj * k;
            float* d = panel + jj;
            for (int p = done; p < depth; p++) d[(nint)p * NR] = s[p];
        }
    }
}
