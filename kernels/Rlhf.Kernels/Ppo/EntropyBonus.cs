namespace Rlhf.Kernels.Ppo;

/// <summary>PPO's entropy bonus −c2·masked_mean(entropy): its mean and its gradient w.r.t. the per-token entropies.</summary>
public static class EntropyBonus
{
    /// <summary>
    /// Effectively computes gradEntropy[i] = −coef/valid at valid tokens (mask[i] ≠ 0) and 0 elsewhere, and returns the
    /// masked mean entropy (0 when <paramref name="valid"/> is 0). <paramref name="valid"/> is the mask's count
    /// (<see cref="MaskCount.Count"/>, or a loss's ValidCount). NaN entropies at valid tokens reach the mean.
    /// </summary>
    /// <exception cref="ArgumentException">entropy or mask is not as long as gradEntropy.</exception>
    public static double Gradient(ReadOnlySpan<float> entropy, ReadOnlySpan<float> mask, int valid, float coef, Span<float> gradEntropy)
    {
        PpoArgs.Length(entropy.Length, gradEntropy.Length, nameof(entropy), nameof(gradEntropy));
        PpoArgs.Length(mask.Length, gradEntropy.Length, nameof(mask), nameof(gradEntropy));
        double sum = 0;
        float scale = valid > 0 ? -coef / valid : 0f;
        for (int i = 0; i < gradEntropy.Length; i++)
        {
            bool on = mask[i] != 0f;
            if (on) sum += entropy[i];
            gradEntropy[i] = on ? scale : 0f;
        }

        return valid > 0 ? sum / valid : 0;
    }
}
