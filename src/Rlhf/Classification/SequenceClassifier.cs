using Rlhf.IO;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Classification;

/// <summary>A saved sequence classifier (see <see cref="ScoredModelFiles"/>): logits, softmax probabilities, and a class's logit as a reward.</summary>
public sealed class SequenceClassifier
{
    public const string Kind = "classifier";

    private readonly SequenceScorer scorer;

    private SequenceClassifier(SequenceScorer scorer, ITokenizer tokenizer, string[] labels)
    {
        this.scorer = scorer;
        Tokenizer = tokenizer;
        Labels = labels;
    }

    public ITokenizer Tokenizer { get; }

    /// <summary>Class i's name.</summary>
    public IReadOnlyList<string> Labels { get; }

    public int Classes => Labels.Count;

    public static SequenceClassifier Load(string directory)
    {
        var (scorer, tokenizer, config) = ScoredModelFiles.Load(directory, Kind);
        var labels = new HeadConfigFields(Path.Combine(directory, ScoredModelFiles.ConfigFileName), config).Strings("labels");
        if (labels.Length != scorer.Head.Outputs) throw new InvalidInputException($"{directory}: {labels.Length} labels for a head with {scorer.Head.Outputs} outputs");
        return new SequenceClassifier(scorer, tokenizer, labels);
    }

    /// <summary>The class index of <paramref name="label"/>; throws naming the label and the known ones.</summary>
    public int ClassIndex(string label)
    {
        for (int i = 0; i < Labels.Count; i++)
        {
            if (Labels[i] == label) return i;
        }

        throw new ArgumentException($"unknown label '{label}'; the classifier has [{string.Join(", ", Labels)}].", nameof(label));
    }

    /// <summary>logits [texts.Count, Classes].</summary>
    public void Logits(IReadOnlyList<string> texts, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var rows = new List<int[]>(texts.Count);
        foreach (var t in texts) rows.Add(scorer.Rows.Encode("", t ?? throw new ArgumentException("a text is null.", nameof(texts))));
        scorer.Score(rows, logits);
    }

    /// <summary>probabilities [texts.Count, Classes] = softmax of the logits per text.</summary>
    public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
    {
        var z = new float[probabilities.Length];
        Logits(texts, z);
        ClassificationLoss.Softmax(z, Classes, probabilities);
    }

    public float[] Logits(string text)
    {
        var z = new float[Classes];
        Logits([text], z);
        return z;
    }

    /// <summary>The logit of class <paramref name="classIndex"/> for <paramref name="text"/>: the classifier used as a reward.</summary>
    public float RewardOf(string text, int classIndex)
    {
        CheckClass(classIndex);
        return Logits(text)[classIndex];
    }

    public float RewardOf(string text, string label) => RewardOf(text, ClassIndex(label));

    /// <summary>softmax(logits)[classIndex] for <paramref name="text"/>.</summary>
    public float ProbabilityOf(string text, int classIndex)
    {
        CheckClass(classIndex);
        var p = new float[Classes];
        ClassificationLoss.Softmax(Logits(text), Classes, p);
        return p[classIndex];
    }

    public float ProbabilityOf(string text, string label) => ProbabilityOf(text, ClassIndex(label));

    /// <summary>An <see cref="IRewardFunction"/> whose reward is the logit of <paramref name="classIndex"/> on the response.</summary>
    public ClassifierReward AsReward(int classIndex)
    {
        CheckClass(classIndex);
        return new ClassifierReward(this, classIndex);
    }

    private void CheckClass(int classIndex)
    {
        if ((uint)classIndex >= (uint)Classes) throw new ArgumentOutOfRangeException(nameof(classIndex), classIndex, $"class index {classIndex} is outside [0, {Classes}).");
    }
}
