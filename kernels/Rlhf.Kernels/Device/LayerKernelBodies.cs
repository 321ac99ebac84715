using ILGPU;
using ILGPU.Algorithms;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Device bodies of the transformer's per-layer ops (written for CUDA). Every reduction is owned by one thread and
/// runs in index order (no atomics), so results are deterministic. Shapes as the CPU layers in Rlhf.Model.
/// </summary>
internal static class LayerKernelBodies
{
    private const float GeluS = 0.7978845608028654f; // √(2/π)
    private const float GeluC = 0.044715f;

    /// <summary>Largest group the row kernels' shared memory is sized for (a power of two).</summary>
    public const int MaxRowGroup = 256;

    /// <summary>One group per row (power-of-two size, coalesced strided loop): x [n,c] → y, mean, rstd (LayerNorm, biased variance).</summary>
    public static void LayerNormForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b,
        ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, int c, float eps)
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroup);
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long o = (long)row * c;
        float s = 0f;
        for (int j = lane; j < c; j += size) s += x[o + j];
        float m = GroupSum(s, shared) / c, v = 0f;
        for (int j = lane; j < c; j += size)
        {
            float dx = x[o + j] - m;
            v += dx * dx;
        }

        float r = 1f / XMath.Sqrt(GroupSum(v, shared) / c + eps);
        for (int j = lane; j < c; j += size) y[o + j] = (x[o + j] - m) * r * w[j] + b[j];
        if (lane != 0) return;
        mean[row] = m;
        rstd[row] = r;
    }

    /// <summary>One group per row: dx [n,c] += LayerNorm input gradient.</summary>
    public static void LayerNormBackwardInput(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> dx, int c)
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroup);
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long o = (long)row * c;
        float m = mean[row], r = rstd[row], sumD = 0f, sumDx = 0f;
        for (int j = lane; j < c; j += size)
        {
            float dn = w[j] * dy[o + j];
            sumD += dn;
            sumDx += dn * (x[o + j] - m) * r;
        }

        float meanD = GroupSum(sumD, shared) / c, meanDx = GroupSum(sumDx, shared) / c;
        for (int j = lane; j < c; j += size)
        {
            float xh = (x[o + j] - m) * r;
            dx[o + j] += (w[j] * dy[o + j] - meanD - xh * meanDx) * r;
        }
    }

    /// <summary>One group per row: RMSNorm x [n,c] → y, rstd.</summary>
    public static void RmsNormForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> rstd, int c, float eps)
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroup);
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long o = (long)row * c;
        float s = 0f;
        for (int j = lane; j < c; j += size) s += x[o + j] * x[o + j];
        float r = 1f / XMath.Sqrt(GroupSum(s, shared) / c + eps);
        for (int j = lane; j < c; j += size) y[o + j] = x[o + j] * r * w[j];
        if (lane == 0) rstd[row] = r;
    }

    /// <summary>One group per row: dx [n,c] += RMSNorm input gradient.</summary>
    public static void RmsNormBackwardInput(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w, ArrayView<float> rstd, ArrayView<float> dx, int c)
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroup);
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long o = (long)row * c;
        float r = rstd[row], dot = 0f;
        for (int j = lane; j < c; j += size) dot += w[j] * dy[o + j] * x[o + j];
        float k = GroupSum(dot, shared) * r * r * r / c;
        for (int j = lane; j < c; j += size) dx[o + j] += w[j] * dy[o + j] * r - x[o + j] * k;
    }

    /// <summary>Tree sum of one value per thread over the group (fixed pairing: deterministic); every thread gets the total.</summary>
    private static float GroupSum(float value, ArrayView<float> shared)
    {
        int lane = Group.IdxX;
        shared[lane] = value;
        Group.Barrier();
        for (int stride = Group.DimX / 2; stride > 0; stride >>= 1)
        {
            if (lane < stride) shared[lane] += shared[lane + stride];
            Group.Barrier();
        }

        float total = shared[0];
        Group.Barrier();
        return total;
    }

    /// <summary>What <see cref="ColumnPartials"/> sums down a column.</summary>
    public const int SumDy = 0, SumDyXRstd = 1, SumDyXhatAndDy = 2;

    /// <summary>
    /// Index over [chunks, c]: partialA[chunk, j] = Σ over the chunk's rows (in order) of dy (kind SumDy), dy·x·rstd
    /// (SumDyXRstd: RMSNorm's dw) or dy·(x − mean)·rstd with partialB = Σ dy (SumDyXhatAndDy: LayerNorm's dw, db).
    /// Column sums split into fixed row chunks keep every thread busy on a GPU and the order fixed.
    /// </summary>
    public static void ColumnPartials(Index1D index, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> partialA, ArrayView<float> partialB, int n, int c, int rowsPerChunk, int kind)
    {
        int chunk = index / c, col = index % c;
        int end = XMath.Min(n, (chunk + 1) * rowsPerChunk);
        float a = 0f, b = 0f;
        for (int i = chunk * rowsPerChunk; i < end; i++)
        {
            long k = (long)i * c + col;
            float g = dy[k];
            if (kind == SumDy) a += g;
            else if (kind == SumDyXRstd) a += g * x[k] * rstd[i];
            else
            {
                a += g * (x[k] - mean[i]) * rstd[i];
                b += g;
            }
        }

        partialA[index] = a;
        if (kind == SumDyXhatAndDy) partialB[index] = b;
    }

    /// <summary>One thread per column: outA[j] += Σ_chunk partialA[chunk, j] (and outB from partialB when hasB), chunks in order.</summary>
    public static void ColumnFinish(Index1D col, ArrayView<float> partialA, ArrayView<float> partialB, ArrayView<float> outA, ArrayView<float> outB,
        int chunks, int c, int hasB)
    {
        float a = 0f, b = 0f;
        for (int k = 0; k < chunks; k++)
        {
            a += partialA[(long)k * c + col];
            if (hasB != 0) b += partialB[(long)k * c + col];
        }

        outA[col] += a;
        if (hasB != 0) outB[col] += b;
    }

    /// <summary>y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static void GeluForward(Index1D i, ArrayView<float> x, ArrayView<float> y)
    {
        float v = x[i];
        y[i] = 0.5f * v * (1f + XMath.Tanh(GeluS * (v + GeluC * v * v * v)));
    }

    /// <summary>dx = dy·gelu'(x) (overwritten).</summary>
    public static void GeluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx)
    {
        float v = x[i], th = XMath.Tanh(GeluS * (v + GeluC * v * v * v));
        float du = GeluS * (1f + 3f * GeluC * v * v);
        dx[i] = 0.5f * dy[i] * (1f + th + v * (1f - th * th) * du);
    }

    /// <summary>Index over [n,f]: y = silu(gate)·up from gateUp [n,2f].</summary>
    public static void SwiGluForward(Index1D i, ArrayView<float> gateUp, ArrayView<float> y, int f)
    {
        long row = i / f, j = i % f, o = row * 2 * f;
        float g = gateUp[o + j], s = 1f / (1f + XMath.Exp(-g));
        y[i] = g * s * gateUp[o + f + j];
    }

    /// <summary>Index over [n,f]: dGateUp [n,2f] (overwritten) from gateUp and dy [n,f].</summary>
    public static void SwiGluBackward(Index1D i, ArrayView<float> gateUp, ArrayView<float> dy, ArrayView<float> dGateUp, int f)
    {
        long row = i / f, j = i % f, o = row * 2 * f;
        float g = gateUp[o + j], u = gateUp[o + f + j], s = 1f / (1f + XMath.Exp(-g)), silu = g * s, d = dy[i];
        dGateUp[o + j] = d * u * (s + silu * (1f - s));
        dGateUp[o + f + j] = d * silu;
    }

    /// <summary>c = a + b elementwise.</summary>
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) => c[i] = a[i] + b[i];

    /// <summary>Index over [n,out]: y[i,o] += bias[o].</summary>
    public static void AddBias(Index1D i, ArrayView<float> y, ArrayView<float> bias, int outDim) => y[i] += bias[i % outDim];

    /// <summary>Index over [n,d]: x = wte[token] (+ wpe[pos] when hasPositions).</summary>
    public static void EmbeddingForward(Index1D i, ArrayView<int> tokens, ArrayView<int> positions, ArrayView<float> wte, ArrayView<float> wpe,
        ArrayView<float> x, int d, int hasPositions)
    {
        long row = i / d, col = i % d;
        float v = wte[(long)tokens[row] * d + col];
        if (hasPositions != 0) v += wpe[(long)positions[row] * d + col];
        x[i] = v;
    }

    /// <summary>One thread per column: dwte[token]·· += dx, dwpe[pos] += dx, rows in order (no two threads share an address).</summary>
    public static void EmbeddingBackward(Index1D col, ArrayView<float> dx, ArrayView<int> tokens, ArrayView<int> positions,
        ArrayView<float> dwte, ArrayView<float> dwpe, int n, int d, int hasPositions)
    {
        for (int i = 0; i < n; i++)
        {
            float g = dx[(long)i * d + col];
            dwte[(long)tokens[i] * d + col] += g;
            if (hasPositions != 0) dwpe[(long)positions[i] * d + col] += g;
        }
    }

    /// <summary>
    /// Index over [n, heads, hd/2]: rotates the pair (x[i], x[i+hd/2]) of each head starting at columnOffset by
    /// pos·θ^(−2i/hd) from the cos/sin tables [ctx, hd/2]; sign = −1 applies the transpose (backward).
    /// </summary>
    public static void Rope(Index1D index, ArrayView<float> x, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin,
        int rowStride, int columnOffset, int heads, int headDim, float sign)
    {
        int half = headDim / 2;
        int i = index % half, h = (index / half) % heads, r = index / (half * heads);
        long t = (long)positions[r] * half + i;
        float c = cos[t], s = sign * sin[t];
        long o = (long)r * rowStride + columnOffset + h * headDim + i;
        float a = x[o], b = x[o + half];
        x[o] = a * c - b * s;
        x[o + half] = b * c + a * s;
    }
}
