namespace Rlhf.Training;

/// <summary>Decay after warmup.</summary>
public enum DecayKind
{
    Constant,
    Linear,
    Cosine,
}

/// <summary>
/// HF transformers' schedules: lr(step) = peak·step/warmup during warmup, then constant, linear to 0 at
/// <see cref="TotalSteps"/>, or cosine 0.5·(1 + cos(π·progress)). Steps count from 0 (so step 0 of a warmup has lr 0, as HF).
/// </summary>
public sealed record LearningRateSchedule(float PeakLearningRate, int WarmupSteps, int TotalSteps, DecayKind Decay)
{
    public float At(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (WarmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, "must be >= 0.");
        if (step < WarmupSteps) return PeakLearningRate * step / WarmupSteps;
        if (Decay == DecayKind.Constant) return PeakLearningRate;
        if (TotalSteps <= WarmupSteps) throw new ArgumentOutOfRangeException(nameof(TotalSteps), TotalSteps, $"must exceed WarmupSteps {WarmupSteps} for a decaying schedule.");
        double progress = Math.Min(1.0, (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps));
        double factor = Decay == DecayKind.Linear ? 1.0 - progress : 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return (float)(PeakLearningRate * factor);
    }
}
