namespace Rlhf.Ppo;

/// <summary>What one PPO iteration reports (console, metrics.jsonl). Means over valid response tokens unless said.</summary>
public sealed record PpoMetrics
{
    public int Iteration { get; init; }

    /// <summary>Mean / std over the batch of the reward function's raw score.</summary>
    public double MeanScore { get; init; }

    public double StdScore { get; init; }

    /// <summary>Mean over the batch of Σ_t (log π − log π_ref) (TRL objective/kl).</summary>
    public double MeanKl { get; init; }

    /// <summary>β used for this iteration's rewards.</summary>
    public double KlCoef { get; init; }

    public double Entropy { get; init; }

    public double ClipFraction { get; init; }

    public double ApproxKl { get; init; }

    public double PolicyLoss { get; init; }

    public double ValueLoss { get; init; }

    public double ValueClipFraction { get; init; }

    /// <summary>1 − Var(returns − values)/Var(returns) over valid tokens.</summary>
    public double ExplainedVariance { get; init; }

    public double MeanResponseLength { get; init; }

    public double GradNorm { get; init; }

    public int MinibatchSteps { get; init; }

    /// <summary>Of <see cref="MinibatchSteps"/>, those skipped for a mean ratio above <see cref="PpoOptions.RatioThreshold"/>
    /// (TRL's ratio_threshold): no gradient, PolicyLoss and ValueLoss counted as 0.</summary>
    public int SkippedMinibatches { get; init; }

    public bool EarlyStopped { get; init; }

    /// <summary>Prompt + response tokens processed per second over the whole iteration.</summary>
    public double TokensPerSecond { get; init; }

    public double GenerationSeconds { get; init; }

    /// <summary>Forward passes for old log-probs, values and reference log-probs.</summary>
    public double ReferenceSeconds { get; init; }

    public double ScoringSeconds { get; init; }

    public double UpdateSeconds { get; init; }

    /// <summary>Wall time of the whole iteration.</summary>
    public double IterationSeconds { get; init; }

    /// <summary>
    /// The part of the iteration spent outside engine and kernel calls (batching, copies, tokenising, bookkeeping);
    /// the goal is under 5 % of <see cref="IterationSeconds"/>.
    /// </summary>
    public double OrchestrationSeconds { get; init; }
}
