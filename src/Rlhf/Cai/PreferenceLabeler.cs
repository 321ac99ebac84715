namespace Rlhf.Cai;

/// <summary>One principle's verdict: P(A) with the first reply shown as A, and P(A) with the second shown as A.</summary>
public sealed record PreferenceVote(string Principle, double FirstAsA, double SecondAsA)
{
    /// <summary>P(the first reply is better) under this principle, both orders averaged.</summary>
    public double FirstBetter => OptionPreference.AverageOrders(FirstAsA, SecondAsA);
}

/// <summary>P(the first reply is better), averaged over principles and orders, with each principle's votes.</summary>
public sealed record PreferenceJudgement(double FirstBetter, IReadOnlyList<PreferenceVote> Votes);

/// <summary>
/// Asks a feedback model the constitution's multiple-choice question about two replies: the prompt ends with the
/// answer prefix, and the two option labels are scored as continuations (<see cref="ICaiLanguageModel.OptionLogProbs"/>).
/// </summary>
public sealed class PreferenceLabeler
{
    private readonly ICaiLanguageModel feedback;

    public PreferenceLabeler(ICaiLanguageModel feedback, Constitution constitution)
    {
        this.feedback = feedback ?? throw new ArgumentNullException(nameof(feedback));
        Constitution = constitution ?? throw new ArgumentNullException(nameof(constitution));
    }

    public Constitution Constitution { get; }

    /// <summary>The text scored for one presentation: chat-formatted question, then the answer prefix.</summary>
    public string ComparisonPrompt(string prompt, string optionA, string optionB, ComparisonPrinciple principle)
    {
        var c = Constitution;
        string user = c.Templates.Comparison.Render(new Dictionary<string, string>
        {
            ["prompt"] = prompt,
            ["question"] = principle.Question,
            ["option_a"] = optionA,
            ["option_b"] = optionB,
            ["label_a"] = c.LabelA,
            ["label_b"] = c.LabelB,
        });
        return c.ChatFormat.RenderPrompt(user) + c.Templates.AnswerPrefix;
    }

    /// <summary>The scored continuations: each label after a space (the answer prefix ends in a word).</summary>
    public IReadOnlyList<string> OptionTexts => [" " + Constitution.LabelA, " " + Constitution.LabelB];

    /// <summary>P(A) for one presentation: the two label scores normalised against each other.</summary>
    public double ProbabilityOfA(string prompt, string optionA, string optionB, ComparisonPrinciple principle)
    {
        var lp = feedback.OptionLogProbs(ComparisonPrompt(prompt, optionA, optionB, principle), OptionTexts);
        return OptionPreference.TwoWay(lp[0], lp[1]);
    }

    /// <summary>Both orders under each principle; the mean of the per-principle preferences.</summary>
    public PreferenceJudgement Judge(string prompt, string first, string second, IReadOnlyList<ComparisonPrinciple> principles)
    {
        ArgumentNullException.ThrowIfNull(principles);
        if (principles.Count == 0) throw new ArgumentException("no comparison principles", nameof(principles));
        var votes = new PreferenceVote[principles.Count];
        double sum = 0;
        for (int i = 0; i < principles.Count; i++)
        {
            var pr = principles[i];
            votes[i] = new PreferenceVote(pr.Name, ProbabilityOfA(prompt, first, second, pr), ProbabilityOfA(prompt, second, first, pr));
            sum += votes[i].FirstBetter;
        }

        return new PreferenceJudgement(sum / principles.Count, votes);
    }
}
