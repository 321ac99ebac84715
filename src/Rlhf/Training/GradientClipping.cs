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
        var buffers = new Memory<float>[gradients.Count];
        for (int i = 0; i < buffers.Length; i++) buffers[i] = gradients[i];
        double norm = Kernels.Optim.GradientClipping.GlobalNorm(buffers);
        if (double.IsFinite(norm) && norm > maxNorm) Kernels.Optim.GradientClipping.ClipByGlobalNorm(buffers, maxNorm);
        return norm;
    }
}
