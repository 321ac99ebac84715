namespace Rlhf.Ppo;

/// <summary>
/// The KL coefficient β: fixed, or adaptive as Ziegler et al. (2019) / TRL's AdaptiveKLController:
/// e = clip(KL/target − 1, −0.2, 0.2); β ← β·(1 + e·n/horizon), n = samples in the batch.
/// </summary>
public sealed class KlController
{
    public KlController(float initial, bool adaptive, float target, float horizon)
    {
        Value = initial;
        Adaptive = adaptive;
        Target = target;
        Horizon = horizon;
    }

    public float Value { get; internal set; }

    public bool Adaptive { get; }

    public float Target { get; }

    public float Horizon { get; }

    /// <summary>Feeds the batch's mean per-sequence KL after an iteration of <paramref name="samples"/> rollouts.</summary>
    public void Update(double currentKl, int samples)
    {
        if (!Adaptive) return;
        double error = Math.Clamp(currentKl / Target - 1.0, -0.2, 0.2);
        Value = (float)(Value * (1.0 + error * samples / Horizon));
    }
}

/// <summary>TRL's RunningMoments (parallel-variance update over batches) for score scaling/normalisation.</summary>
public sealed class RunningMoments
{
    public double Mean { get; internal set; }

    public double Variance { get; internal set; } = 1.0;

    public double Std { get; internal set; } = 1.0;

    public double Count { get; internal set; } = 1e-24;

    /// <summary>Folds one batch in (population variance of the batch, as TRL's torch.var_mean(unbiased=False)).</summary>
    public void Update(ReadOnlySpan<float> xs)
    {
        int n = xs.Length;
        double mean = 0;
        foreach (float x in xs) mean += x;
        mean /= n;
        double var = 0;
        foreach (float x in xs) var += (x - mean) * (x - mean);
        var /= n;
        double delta = mean - Mean;
        double total = Count + n;
        double oldSum = Variance * Count + delta * delta * Count * n / total;
        Mean += delta * n / total;
        Variance = (oldSum + var * n) / total;
        Std = Math.Sqrt(Variance * total / (total - 1));
        Count = total;
    }
}
