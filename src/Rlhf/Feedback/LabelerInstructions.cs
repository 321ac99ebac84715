namespace Rlhf.Feedback;

/// <summary>The default instructions shown to labelers (this project's own text, shipped with the library).</summary>
public static class LabelerInstructions
{
    private static readonly Lazy<string> Text = new(() =>
    {
        using var stream = typeof(LabelerInstructions).Assembly.GetManifestResourceStream("Rlhf.Feedback.LabelerInstructions.md")
            ?? throw new InvalidOperationException("the embedded labeler instructions are missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public static string Default => Text.Value;
}
