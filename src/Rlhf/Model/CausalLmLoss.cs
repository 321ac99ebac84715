using System.Numerics.Tensors;

namespace Rlhf.Model;

/// <summary>Weighted token cross-entropy over logits, with the gradient written into dlogits.</summary>
public static class CausalLmLoss
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
        if (grad) dLogits[..(n * v)].Clear();
        if (wsum == 0) return 0f;
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            float w = weights[i];
            if (w == 0f) continue;
            var z = logits.Slice(i * v, v);
            float max = TensorPrimitives.Max(z);
            double s = 0;
            for (int j = 0; j < v; j++) s += MathF.Exp(z[j] - max);
            double lse = max + Math.Log(s);
            loss += w * (lse - z[targets[i]]);
            if (grad)
            {
                var d = dLogits.Slice(i * v, v);
                float scale = (float)(gradScale * w / wsum);
                TensorPrimitives.Subtract(z, (float)lse, d);
                TensorPrimitives.Exp(d, d);
                TensorPrimitives.Multiply(d, scale, d);
                d[targets[i]] -= scale;
            }
        }

        return (float)(loss / wsum);
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
