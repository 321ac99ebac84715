using Rlhf.Feedback;

namespace Rlhf.Labeling;

/// <summary>A labeler found by their token; <see cref="TokenHash"/> keys their anti-forgery token.</summary>
public sealed record LabelerIdentity(long Id, string Name, byte[] TokenHash);

/// <summary>A labeler just added: <see cref="Token"/> is shown once (only its hash is stored).</summary>
public sealed record NewLabeler(string Name, string Token)
{
    public string Link(string baseUrl) => LabelingLinks.Labeler(baseUrl, Token);
}

/// <summary>One item in a labeler's queue, in the order it was assigned.</summary>
public sealed record AssignmentSummary(long ItemId, string PromptId, bool Ranked, bool Closed);

/// <summary>What a labeler sees of one item: completions in the stored order, their own ranks and thumbs so far.</summary>
public sealed record ItemView(long ItemId, string PromptId, string Prompt, IReadOnlyList<Completion> Completions, Rank[]? Ranks, bool?[] Thumbs, bool Closed, int Revision);

public sealed record LabelerProgress(string Name, int Assigned, int Ranked, int Thumbs);

public sealed record ItemProgress(long ItemId, string PromptId, int Rankings, bool Closed);

/// <summary>The organiser's view: progress per labeler, items still short of the overlap, agreement so far.</summary>
public sealed record ProjectStatus(
    int Overlap, int Items, int ClosedItems, int Rankings, int ItemsShortOfOverlap,
    IReadOnlyList<LabelerProgress> Labelers, IReadOnlyList<ItemProgress> ShortOfOverlap, AgreementReport Agreement);

/// <summary>Everything collected, in the feedback library's types (what export writes).</summary>
public sealed record LabelingSnapshot(Dictionary<string, CompletionSet> Sets, List<Ranking> Rankings, List<ThumbFeedback> Thumbs);

public static class LabelingLinks
{
    // The token travels in the fragment: browsers never send it to the server in the URL or a Referer header.
    public static string Labeler(string baseUrl, string token) => $"{baseUrl.TrimEnd('/')}/label#{token}";

    public static string Organiser(string baseUrl, string token) => $"{baseUrl.TrimEnd('/')}/organiser#{token}";
}
