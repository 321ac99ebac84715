namespace Rlhf.Model;

/// <summary>Token (+ learned position) embedding lookup and its scatter-add backward.</summary>
public static class Embedding
{
    /// <summary>
    /// tokens [n], positions [n], wte [vocab,d], wpe [ctx,d] or empty -> x [n,d] = wte[token] (+ wpe[pos]).
    /// Throws <see cref="ArgumentOutOfRangeException"/> naming the index of a token or position out of range.
    /// </summary>
    public static void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<float> wte, ReadOnlySpan<float> wpe, Span<float> x, int n, int d, int vocab)
    {
        int ctx = wpe.Length / d;
        for (int i = 0; i < n; i++)
        {
            int tok = tokens[i];
            if ((uint)tok >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(tokens), tok, $"token at index {i} is outside [0, {vocab}).");
            var row = x.Slice(i * d, d);
            wte.Slice(tok * d, d).CopyTo(row);
            if (!wpe.IsEmpty)
            {
                int p = positions[i];
                if ((uint)p >= (uint)ctx) throw new ArgumentOutOfRangeException(nameof(positions), p, $"position at index {i} is outside [0, {ctx}).");
                System.Numerics.Tensors.TensorPrimitives.Add(row, wpe.Slice(p * d, d), row);
            }
        }
    }

    /// <summary>dx [n,d] -> dwte[token] += dx, dwpe[pos] += dx (sequential, so the sum order is fixed).</summary>
    public static void Backward(ReadOnlySpan<float> dx, ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, Span<float> dwte, Span<float> dwpe, int n, int d)
    {
        for (int i = 0; i < n; i++)
        {
            var g = dx.Slice(i * d, d);
            var t = dwte.Slice(tokens[i] * d, d);
            System.Numerics.Tensors.TensorPrimitives.Add(t, g, t);
            if (!dwpe.IsEmpty)
            {
                var p = dwpe.Slice(positions[i] * d, d);
                System.Numerics.Tensors.TensorPrimitives.Add(p, g, p);
            }
        }
    }

    /// <summary>mask [b,t] -> positions [b,t] = max(cumsum(mask) − 1, 0) per row, so left padding starts real tokens at 0.</summary>
    public static void PositionsFromMask(ReadOnlySpan<float> mask, Span<int> positions, int batch, int seq)
    {
        for (int b = 0; b < batch; b++)
        {
            int c = 0;
            for (int t = 0; t < seq; t++)
            {
                if (mask[b * seq + t] != 0f) c++;
                positions[b * seq + t] = Math.Max(c - 1, 0);
            }
        }
    }
}
