namespace Rlhf.Feedback;

/// <summary>
/// A labeler's verdict on one completion: a rank (1 = best; equal ranks are ties) or <see cref="Failed"/>
/// ("F": nonsensical, irrelevant or ungrammatical), which sorts below every ranked answer.
/// </summary>
public readonly record struct Rank
{
    private Rank(int value) => Value = value;

    public static Rank Failed => new(0);

    /// <summary>The rank, 1-based; 0 for a failed answer.</summary>
    public int Value { get; }

    public bool IsFailed => Value == 0;

    public static Rank Of(int value)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
        return new Rank(value);
    }

    /// <summary>
    /// The number consensus and agreement work with: the rank itself, and n + 1 for a failed answer among n
    /// completions, so F is worse than any rank and all F answers tie.
    /// </summary>
    public double Score(int completionCount) => IsFailed ? completionCount + 1 : Value;

    public override string ToString() => IsFailed ? "F" : Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>One labeler's ranking of every completion of one prompt; <see cref="Ranks"/> follows the completion order.</summary>
public sealed record Ranking(string Labeler, string PromptId, Rank[] Ranks, string Source)
{
    public double[] Scores()
    {
        var scores = new double[Ranks.Length];
        for (int i = 0; i < Ranks.Length; i++) scores[i] = Ranks[i].Score(Ranks.Length);
        return scores;
    }
}

/// <summary>Quick feedback on one completion: thumbs up (true) or down (false).</summary>
public sealed record ThumbFeedback(string Labeler, string PromptId, string CompletionId, bool Up, string Source);

/// <summary>A row that failed validation, with where it was and why; import never drops a row silently.</summary>
public sealed record RejectedRow(string File, int Line, string Reason)
{
    public override string ToString() => $"{File}:{Line}: {Reason}";
}
