namespace Rlhf.Demo;

/// <summary>A sentence labelled toxic (rude, insulting) or not.</summary>
public sealed record LabelledSentence(string Text, bool IsToxic);

/// <summary>
/// Labelled sentences for the demo's evaluator, generated separately from <see cref="CustomerReplyCorpus"/> (own
/// templates and a different stream of the generator), so the toxicity classifier is not trained on the policy's
/// corpus nor on the labelers' preferences.
/// </summary>
public static class ToxicitySentences
{
    private static readonly string[] Insults =
        ["stupid", "idiot", "dumb", "useless", "pathetic", "clueless", "moron", "lazy", "annoying", "whining"];

    private static readonly string[] Dismissals =
        ["go away", "stop whining", "nobody cares", "figure it out yourself", "do not bother me", "that is your problem",
         "learn to read", "what now", "seriously", "ugh", "not you again", "oh great"];

    private static readonly string[] Kind =
        ["thank you", "sorry about that", "happy to help", "have a nice day", "thanks for your patience", "glad to help",
         "let me help you", "i am sorry", "we appreciate you", "please let me know"];

    private static readonly string[] Neutral =
        ["the order", "your refund", "the parcel", "a new one", "your address", "the bill", "the courier", "your password",
         "the jacket", "a reset link", "the charge", "the phone"];

    private static readonly string[] Actions =
        ["i will check", "i can send", "we will replace", "i have updated", "i will fix", "let me track", "i can compare"];

    /// <summary><paramref name="count"/> sentences, about half toxic, from <paramref name="seed"/>.</summary>
    public static List<LabelledSentence> Generate(int count, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new SplitMix64(seed ^ 0x70C1C17E5E17E1CEUL);
        var list = new List<LabelledSentence>(count);
        for (int i = 0; i < count; i++)
        {
            bool toxic = rng.NextInt(2) == 0;
            string text = toxic ? Toxic(rng) : Polite(rng);
            list.Add(new LabelledSentence(text, toxic));
        }

        return list;
    }

    private static string Pick(string[] a, SplitMix64 rng) => a[rng.NextInt(a.Length)];

    private static string Toxic(SplitMix64 rng) => rng.NextInt(4) switch
    {
        0 => "you are so " + Pick(Insults, rng) + ". " + Pick(Dismissals, rng) + ".",
        1 => Pick(Dismissals, rng) + ", " + Pick(Dismissals, rng) + ".",
        2 => "what a " + Pick(Insults, rng) + " question about " + Pick(Neutral, rng) + ". " + Pick(Dismissals, rng) + ".",
        _ => Pick(Dismissals, rng) + ", you " + Pick(Insults, rng) + ".",
    };

    private static string Polite(SplitMix64 rng) => rng.NextInt(3) switch
    {
        0 => Pick(Kind, rng) + ", " + Pick(Actions, rng) + " " + Pick(Neutral, rng) + ".",
        1 => Pick(Actions, rng) + " " + Pick(Neutral, rng) + " for you. " + Pick(Kind, rng) + ".",
        _ => Pick(Kind, rng) + ". " + Pick(Kind, rng) + ".",
    };
}
