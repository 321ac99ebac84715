using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

/// <summary>Weighted token cross-entropy over logits, with the gradient written into dlogits.</summary>
public static unsafe class CausalLmLoss
{
    /// <summary>
    /// logits [n,v], targets [n], weights [n] -> returns L = Σ_i w_i·(logsumexp(z_i) − z_i[t_i]) / Σ_i w_i and writes
    /// dLogits [n,v] = gradScale·w_i·(softmax(z_i) − onehot(t_i)) / Σ w (0 on rows with w_i = 0, whose targets are
    /// ignored). Every row is shifted by its max before exp. Σ w = 0 gives L = 0 and zero gradients.
    /// A NaN logit on a weighted row gives NaN loss and gradients.
    /// </summary>
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, Span<float> dLogits, int n, int v, float gradScale = 1f)
    {
        double wsum = 0;
        for (int i = 0; i < n; i++)
        {
            float w = weights[i];
            if (w < 0f || float.IsNaN(w)) throw new ArgumentOutOfRangeException(nameof(weights), w, $"weight at index {i} must be >= 0.");
            if (w != 0f && (uint)targets[i] >= (uint)v)
                throw new ArgumentOutOfRangeException(nameof(targets), targets[i], $"target at index {i} is outside [0, {v}).");
            wsum += w;
        }

        bool grad = !dLogits.IsEmpty;
        if (grad && dLogits.Length < n * v) throw new ArgumentException($"dLogits has {dLogits.Length} elements, needs {n * v}.", nameof(dLogits));
        if (logits.Length < n * v) throw new ArgumentException($"logits has {logits.Length} elements, needs {n * v}.", nameof(logits));
        if (grad) dLogits[..(n * v)].Clear();
        if (wsum == 0) return 0f;

        // Rows are split into fixed contiguous chunks whose partial sums are added in chunk order: the result does
        // not depend on thread scheduling.
        int chunks = KernelParallelism.ThreadsFor((long)n * v, 1 << 18);
        var partial = new double[chunks];
        fixed (float* z = logits, d = dLogits, w = weights)
        fixed (int* tg = targets)
        {
            var job = new RowJob { Z = z, D = grad ? d : null, W = w, T = tg, N = n, V = v, Chunks = chunks, Scale = gradScale / wsum };
            if (chunks == 1) partial[0] = job.Run(0);
            else Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c => partial[c] = job.Run(c));
        }

        double loss = 0;
        for (int c = 0; c < chunks; c++) loss += partial[c];
        return (float)(loss / wsum);
    }

    private struct RowJob
    {
        public float* Z, D, W;
        public int* T;
        public int N, V, Chunks;
        public double Scale;

        public readonly double Run(int chunk)
        {
            int lo = (int)((long)N * chunk / Chunks), hi = (int)((long)N * (chunk + 1) / Chunks);
            double loss = 0;
            for (int i = lo; i < hi; i++)
            {
                float w = W[i];
                if (w == 0f) continue;
                var z = new ReadOnlySpan<float>(Z + (long)i * V, V);
                float max = TensorPrimitives.Max(z);
                double lse;
                if (D != null)
                {
                    var d = new Span<float>(D + (long)i * V, V);
                    TensorPrimitives.Subtract(z, max, d);
                    TensorPrimitives.Exp(d, d);
                    double s = TensorPrimitives.Sum<float>(d);
                    lse = max + Math.Log(s);
                    float scale = (float)(Scale * w);
                    TensorPrimitives.Multiply(d, (float)(scale / s), d);
                    d[T[i]] -= scale;
                }
                else
                {
                    double s = 0;
                    for (int j = 0; j < V; j++) s += MathF.Exp(z[j] - max);
                    lse = max + Math.Log(s);
                }

                loss += w * (lse - z[T[i]]);
            }

            return loss;
        }
    }

    /// <summary>
    /// tokens [b,t], mask [b,t], optional lossMask [b,t] (e.g. 1 on response tokens) -> targets [b,t] = tokens shifted
    /// left by one and weights [b,t] = 1 where the next token is real (and in the loss mask), else 0.
    /// </summary>
    public static void ShiftTargets(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, ReadOnlySpan<float> lossMask, Span<int> targets, Span<float> weights, int batch, int seq)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seq; t++)
            {
                int i = b * seq + t;
                bool ok = t + 1 < seq && mask[i] != 0f && mask[i + 1] != 0f && (lossMask.IsEmpty || lossMask[i + 1] != 0f);
                targets[i] = ok ? tokens[i + 1] : 0;
                weights[i] = ok ? 1f : 0f;
            }
        }
    }
}
