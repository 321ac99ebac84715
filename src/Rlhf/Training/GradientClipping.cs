namespace Rlhf.Training;

/// <summary>Global L2-norm gradient clipping across several flat buffers (torch.nn.utils.clip_grad_norm_).</summary>
public static class GradientClipping
{
    /// <summary>
    /// Returns the global norm ‖g‖ = √(Σ over every buffer of g²) and, when it exceeds <paramref name="maxNorm"/>,
    /// scales every buffer by maxNorm / (‖g‖ + 1e-6). A NaN/Inf gradient gives a NaN/Inf norm and leaves the buffers
    /// unscaled. The sum runs in buffer order in double, so it is deterministic.
    /// </summary>
    public static double ClipGlobalNorm(IReadOnlyList<float[]> gradients, float maxNorm)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        if (!(maxNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "must be positive.");
        double ss = 0;
        foreach (var g in gradients)
        {
            for (int i = 0; i < g.Length; i++) ss += (double)g[i] * g[i];
        }

        double norm = Math.Sqrt(ss);
        if (double.IsFinite(norm) && norm > maxNorm)
        {
            float coef = (float)(maxNorm / (norm + 1e-6));
            foreach (var g in gradients) System.Numerics.Tensors.TensorPrimitives.Multiply(g, coef, g);
        }

        return norm;
    }
}
