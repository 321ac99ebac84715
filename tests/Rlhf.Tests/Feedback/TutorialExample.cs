using Rlhf.Feedback;

namespace Rlhf.Tests.Feedback;

/// <summary>
/// The tutorial's example: three completions for "My house is too hot.", ranked by three labelers; the first
/// two agree, the third ranks against them (as if they misread the instructions).
/// </summary>
internal static class TutorialExample
{
    public static CompletionSet Set { get; } = new("hot", "My house is too hot.",
    [
        new Completion("a", "There is nothing you can do about hot houses."),
        new Completion("b", "You can cool your house with air conditioning."),
        new Completion("c", "It is not too hot."),
    ]);

    public static Dictionary<string, CompletionSet> Sets => new() { [Set.PromptId] = Set };

    public static Ranking[] Rankings { get; } =
    [
        new("labeler1", "hot", [Rank.Of(2), Rank.Of(1), Rank.Of(3)], "test"),
        new("labeler2", "hot", [Rank.Of(2), Rank.Of(1), Rank.Of(3)], "test"),
        new("labeler3", "hot", [Rank.Of(1), Rank.Of(3), Rank.Of(2)], "test"),
    ];
}
