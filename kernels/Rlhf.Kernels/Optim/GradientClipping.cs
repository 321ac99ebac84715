using System.Runtime.Intrinsics;
using Rlhf.Kernels.Ppo;

namespace Rlhf.Kernels.Optim;

/// <summary>Global L2 gradient norm and clipping (torch.nn.utils.clip_grad_norm_ with norm_type = 2).</summary>
public static unsafe class GradientClipping
{
    /// <summary>
    /// Effectively computes √(Σ g[i]²), accumulated in double over fixed chunks combined in order (the same bits for
    /// any thread count). Returns NaN or +∞ when an element is NaN or ±∞.
    /// </summary>
    public static float GlobalNorm(ReadOnlySpan<float> gradients) => (float)Math.Sqrt(SumOfSquares(gradients));

    /// <summary>The L2 norm over the concatenation of <paramref name="gradients"/> (spans in order), as <see cref="GlobalNorm(ReadOnlySpan{float})"/>.</summary>
    public static float GlobalNorm(ReadOnlySpan<Memory<float>> gradients)
    {
        double sum = 0;
        foreach (var g in gradients) sum += SumOfSquares(g.Span);
        return (float)Math.Sqrt(sum);
    }

    /// <summary>
    /// Effectively computes norm = √(Σ g[i]²), and when maxNorm/(norm + 1e−6) &lt; 1 scales every g[i] by that factor
    /// (PyTorch's clip coefficient, clamped at 1). Returns the norm before clipping.
    /// </summary>
    /// <exception cref="ArgumentException">maxNorm ≤ 0 or NaN, or a non-finite gradient element (named by index and value;
    /// the gradients are left unchanged).</exception>
    public static float ClipByGlobalNorm(Span<float> gradients, float maxNorm)
    {
        CheckMaxNorm(maxNorm);
        float norm = GlobalNorm(gradients);
        if (!float.IsFinite(norm)) ThrowNonFinite(gradients, nameof(gradients), -1);
        float coef = Coefficient(norm, maxNorm);
        if (coef < 1f) Scale(gradients, coef);
        return norm;
    }

    /// <summary>As <see cref="ClipByGlobalNorm(Span{float}, float)"/> over several buffers with one shared norm.</summary>
    public static float ClipByGlobalNorm(ReadOnlySpan<Memory<float>> gradients, float maxNorm)
    {
        CheckMaxNorm(maxNorm);
        float norm = GlobalNorm(gradients);
        if (!float.IsFinite(norm))
        {
            for (int k = 0; k < gradients.Length; k++) ThrowNonFinite(gradients[k].Span, nameof(gradients), k);
        }

        float coef = Coefficient(norm, maxNorm);
        if (coef < 1f)
        {
            foreach (var g in gradients) Scale(g.Span, coef);
        }

        return norm;
    }

    // PyTorch: clip_coef = max_norm / (total_norm + 1e-6), computed in float32.
    private static float Coefficient(float norm, float maxNorm) => maxNorm / (norm + 1e-6f);

    private static void CheckMaxNorm(float maxNorm)
    {
        if (!(maxNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, $"maxNorm must be > 0 (got {maxNorm}).");
    }

    private static void ThrowNonFinite(ReadOnlySpan<float> g, string name, int buffer)
    {
        for (int i = 0; i < g.Length; i++)
        {
            if (!float.IsFinite(g[i]))
            {
                string where = buffer < 0 ? $"{name}[{i}]" : $"{name}[{buffer}][{i}]";
                throw new ArgumentException($"{where} = {g[i]} is not finite; the gradient norm is undefined.", name);
            }
        }
    }

    private static double SumOfSquares(ReadOnlySpan<float> x)
    {
        int n = x.Length;
        if (n == 0) return 0;
        int chunkLength = ChunkRunner.ChunkLength(n, 64 * 1024);
        int chunks = ChunkRunner.ChunkCount(n, chunkLength);
        double* partials = stackalloc double[ChunkRunner.MaxChunks];
        fixed (float* p = x)
        {
            ChunkRunner.Run(chunks, n / 2, new SquaresBody { X = p, Length = n, ChunkLength = chunkLength, Partials = partials });
        }

        double sum = 0;
        for (int c = 0; c < chunks; c++) sum += partials[c];
        return sum;
    }

    private static void Scale(Span<float> x, float factor)
    {
        int n = x.Length;
        if (n == 0) return;
        int chunkLength = ChunkRunner.ChunkLength(n, 64 * 1024);
        fixed (float* p = x)
        {
            ChunkRunner.Run(ChunkRunner.ChunkCount(n, chunkLength), n, new ScaleBody { X = p, Length = n, ChunkLength = chunkLength, Factor = factor });
        }
    }

    private struct SquaresBody : IChunkBody
    {
        public float* X;
        public int Length, ChunkLength;
        public double* Partials;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            double total = 0;
            // Float partials over 1024 elements (4 independent accumulators), then double.
            while (i < end)
            {
                int blockStart = i, blockEnd = Math.Min(end, i + 1024);
                float part = 0f;
                if (Vector512.IsHardwareAccelerated)
                {
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    for (; i + 64 <= blockEnd; i += 64)
                    {
                        var x0 = Vector512.Load(X + i);
                        var x1 = Vector512.Load(X + i + 16);
                        var x2 = Vector512.Load(X + i + 32);
                        var x3 = Vector512.Load(X + i + 48);
                        a0 = Vector512.FusedMultiplyAdd(x0, x0, a0);
                        a1 = Vector512.FusedMultiplyAdd(x1, x1, a1);
                        a2 = Vector512.FusedMultiplyAdd(x2, x2, a2);
                        a3 = Vector512.FusedMultiplyAdd(x3, x3, a3);
                    }

                    for (; i + 16 <= blockEnd; i += 16)
                    {
                        var x0 = Vector512.Load(X + i);
                        a0 = Vector512.FusedMultiplyAdd(x0, x0, a0);
                    }

                    part = Vector512.Sum((a0 + a1) + (a2 + a3));
                }

                for (; i < blockEnd; i++) part = MathF.FusedMultiplyAdd(X[i], X[i], part);
                // A float block sum overflows from elements of ~1.8e19 on; the block again in double is +∞ only when
                // an element is ±∞ (NaN stays NaN either way), so the norm and the clipping stay right.
                total += float.IsPositiveInfinity(part) ? SquaresInDouble(X + blockStart, blockEnd - blockStart) : part;
            }

            Partials[chunk] = total;
        }

        private static double SquaresInDouble(float* x, int n)
        {
            double sum = 0;
            for (int k = 0; k < n; k++) sum += (double)x[k] * x[k];
            return sum;
        }
    }

    private struct ScaleBody : IChunkBody
    {
        public float* X;
        public int Length, ChunkLength;
        public float Factor;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            if (Vector512.IsHardwareAccelerated)
            {
                var f = Vector512.Create(Factor);
                for (; i + 16 <= end; i += 16) (Vector512.Load(X + i) * f).Store(X + i);
            }

            for (; i < end; i++) X[i] *= Factor;
        }
    }
}
