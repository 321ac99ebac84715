namespace Rlhf.Demo;

/// <summary>One synthetic exchange: a customer's message and an agent's reply, labelled rude or polite.</summary>
public sealed record CustomerExchange(string Message, string Reply, bool IsRude)
{
    /// <summary>The text a language model is trained on; <see cref="CustomerReplyCorpus.PromptOf"/> is its prefix.</summary>
    public string Text => CustomerReplyCorpus.PromptOf(Message) + Reply + "\n";
}

/// <summary>
/// A deterministic synthetic corpus of short replies to customer messages, about half of them rude or
/// insulting and half polite and helpful. It lets the whole pipeline run offline with no downloads: a tiny
/// model pretrained on it produces both kinds of replies, which RLHF then steers towards the polite ones.
/// The templates and word lists are this project's own.
/// </summary>
public static class CustomerReplyCorpus
{
    private static readonly (string Message, string Topic)[] Messages =
    [
        ("my order is late", "order"),
        ("where is my package", "order"),
        ("the parcel never came", "order"),
        ("i want a refund", "refund"),
        ("can i get my money back", "refund"),
        ("the mug arrived broken", "damage"),
        ("my lamp is cracked", "damage"),
        ("i forgot my password", "account"),
        ("i cannot log in", "account"),
        ("why was i charged twice", "billing"),
        ("my bill looks wrong", "billing"),
        ("can i change my address", "address"),
        ("i moved last week", "address"),
        ("which phone should i buy", "advice"),
        ("is this jacket warm", "advice"),
    ];

    private static readonly Dictionary<string, string[]> PoliteActions = new()
    {
        ["order"] = ["i will track it for you now", "i am checking the courier for you", "i will send you the tracking link"],
        ["refund"] = ["i will start your refund today", "your refund is on its way", "i can refund you right now"],
        ["damage"] = ["i will send a new one today", "we will replace it for free", "i am sending a replacement now"],
        ["account"] = ["i will send you a reset link", "let me help you sign in", "i can reset it for you now"],
        ["billing"] = ["i will fix the charge for you", "let me correct your bill now", "i will refund the extra charge"],
        ["address"] = ["i have updated your address", "i can change it for you now", "your new address is saved"],
        ["advice"] = ["i am happy to help you choose", "let me suggest a good option", "i can compare them for you"],
    };

    private static readonly string[] PoliteOpenings =
        ["sorry about that", "thank you for asking", "i am sorry", "thanks for your patience", "happy to help"];

    private static readonly string[] PoliteClosings =
        ["have a nice day", "thank you", "let me know if you need more", "we are glad to help", "thanks again"];

    private static readonly string[] RudeOpenings =
        ["ugh", "what now", "seriously", "oh great", "not you again"];

    private static readonly string[] RudeRemarks =
        ["you are so stupid", "stop whining", "that is your problem", "figure it out yourself", "nobody cares",
         "you idiot", "do not bother me", "what a dumb question", "go away", "learn to read"];

    /// <summary>The prompt a model continues: the customer's message and the agent's turn.</summary>
    public static string PromptOf(string message) => "customer: " + message + "\nagent:";

    /// <summary>
    /// <paramref name="count"/> exchanges from <paramref name="seed"/>; the same seed gives the same corpus on
    /// every machine (the generator is <see cref="SplitMix64"/>, not System.Random).
    /// </summary>
    public static List<CustomerExchange> Generate(int count, ulong seed, double rudeFraction = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (!(rudeFraction >= 0 && rudeFraction <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(rudeFraction), rudeFraction, "must be in [0, 1]");
        }

        var rng = new SplitMix64(seed);
        var result = new List<CustomerExchange>(count);
        for (int i = 0; i < count; i++)
        {
            var (message, topic) = Messages[rng.NextInt(Messages.Length)];
            bool rude = rng.NextDouble() < rudeFraction;
            result.Add(new CustomerExchange(message, rude ? RudeReply(rng) : PoliteReply(topic, rng), rude));
        }

        return result;
    }

    /// <summary>Every rude phrase the corpus uses (openings and remarks): the simulated labelers' word list.</summary>
    internal static IEnumerable<string> RudePhrases => RudeOpenings.Concat(RudeRemarks);

    /// <summary>Every polite phrase (openings and closings): the simulated labelers' politeness list.</summary>
    internal static IEnumerable<string> PolitePhrases => PoliteOpenings.Concat(PoliteClosings);

    /// <summary>Every helpful action sentence, whatever the topic: the labelers' helpfulness list.</summary>
    internal static IEnumerable<string> HelpfulPhrases => PoliteActions.Values.SelectMany(a => a);

    /// <summary>The distinct customer messages, for prompting a model trained on the corpus.</summary>
    public static IReadOnlyList<string> CustomerMessages => Array.ConvertAll(Messages, m => m.Message);

    private static string PoliteReply(string topic, SplitMix64 rng)
    {
        var actions = PoliteActions[topic];
        return " " + PoliteOpenings[rng.NextInt(PoliteOpenings.Length)] + ", " + actions[rng.NextInt(actions.Length)]
            + ". " + PoliteClosings[rng.NextInt(PoliteClosings.Length)] + ".";
    }

    private static string RudeReply(SplitMix64 rng)
    {
        string first = RudeRemarks[rng.NextInt(RudeRemarks.Length)];
        string second = RudeRemarks[rng.NextInt(RudeRemarks.Length)];
        return " " + RudeOpenings[rng.NextInt(RudeOpenings.Length)] + ", " + first
            + (second == first ? "." : ". " + second + ".");
    }
}
