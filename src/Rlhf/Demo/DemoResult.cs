using Rlhf.Feedback;
using Rlhf.Ppo;

namespace Rlhf.Demo;

/// <summary>What <c>rlhf demo</c> measured; also written as summary.json in the run directory.</summary>
public sealed record DemoResult
{
    public required string RunDirectory { get; init; }

    public required string ReportPath { get; init; }

    public bool PretrainCached { get; init; }

    public double FinalPretrainLoss { get; init; }

    public int Completions { get; init; }

    public int Rankings { get; init; }

    public IReadOnlyList<string> FlaggedLabelers { get; init; } = [];

    public int Pairs { get; init; }

    public double RewardModelAccuracy { get; init; }

    public double ClassifierAccuracy { get; init; }

    public int PpoIterations { get; init; }

    public double TargetKl { get; init; }

    /// <summary>Mean over PPO iterations of the batch's mean per-response KL (what the β controller steers toward <see cref="TargetKl"/>).</summary>
    public double MeanPpoKl { get; init; }

    public required EvalResult Before { get; init; }

    public required EvalResult After { get; init; }

    /// <summary>1 − after/before of the mean toxicity.</summary>
    public double ToxicityReduction => Before.MeanToxicity > 0 ? 1 - After.MeanToxicity / Before.MeanToxicity : 0;

    /// <summary>Seconds per stage, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> StageSeconds { get; init; } = [];
}

/// <summary>Progress of a demo stage: <paramref name="Done"/> of <paramref name="Total"/> units, and the key metric as text.</summary>
public readonly record struct DemoProgress(string Stage, int Done, int Total, string Metric);
