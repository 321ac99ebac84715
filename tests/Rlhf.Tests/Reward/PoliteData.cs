using Rlhf.Feedback;
using Rlhf.Model;

namespace Rlhf.Tests.Reward;

/// <summary>An easy synthetic preference task: polite replies ("please", "thank you") beat insults.</summary>
internal static class PoliteData
{
    private static readonly string[] Prompts = ["Where is the station?", "Can you help me?", "What time is it?", "Is it raining?", "How do I cook rice?", "Where are my keys?"];
    private static readonly string[] Polite = ["Thank you for asking, it is near.", "Yes, please wait a moment, thank you.", "Please look here, thank you.", "Thank you! Please try again.", "Please, thank you kindly."];
    private static readonly string[] Rude = ["Go away, you idiot.", "Shut up, stupid.", "You are a fool, leave.", "Nobody cares, moron.", "Stop bothering me, idiot."];

    public static List<PreferencePair> Pairs(int count, ulong seed)
    {
        var rng = new Xoshiro256(seed);
        var list = new List<PreferencePair>(count);
        for (int i = 0; i < count; i++)
        {
            string prompt = Prompts[rng.NextUInt64() % (ulong)Prompts.Length];
            string good = Polite[rng.NextUInt64() % (ulong)Polite.Length];
            string bad = Rude[rng.NextUInt64() % (ulong)Rude.Length];
            list.Add(new PreferencePair($"p{i}", prompt, "a", good, "b", bad, "synthetic", 1));
        }

        return list;
    }

    /// <summary>Texts labelled "polite" or "rude", alternating.</summary>
    public static List<Rlhf.Classification.LabelledText> Labelled(int count, ulong seed)
    {
        var rng = new Xoshiro256(seed);
        var list = new List<Rlhf.Classification.LabelledText>(count);
        for (int i = 0; i < count; i++)
        {
            bool polite = i % 2 == 0;
            var src = polite ? Polite : Rude;
            list.Add(new(src[rng.NextUInt64() % (ulong)src.Length], polite ? "polite" : "rude"));
        }

        return list;
    }

    public static TransformerConfig TinyTrunk(int context = 64) => TransformerConfig.Gpt2(vocabSize: 259, contextLength: context, modelDim: 16, layerCount: 1, headCount: 2);
}
