using Rlhf.Feedback;
using Rlhf.Ppo;
using Rlhf.Reward;

namespace Rlhf.Demo;

/// <summary>
/// The demo's independent evaluator: logistic regression over <see cref="WordFeatures"/>, trained on
/// <see cref="ToxicitySentences"/> (never on the labelers' pairs). Probabilities() is P(toxic | text).
/// </summary>
public sealed class ToxicityClassifier : IProbabilityScorer
{
    private readonly float[] w = new float[WordFeatures.Dimension];
    private float b;

    /// <summary>Full-batch gradient descent on the mean logistic loss with a small L2 penalty; deterministic.</summary>
    public static ToxicityClassifier Train(IReadOnlyList<LabelledSentence> data, int epochs = 200, float learningRate = 0.5f, float l2 = 1e-4f)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("no training sentences.", nameof(data));
        var c = new ToxicityClassifier();
        var x = new int[data.Count][];
        for (int i = 0; i < data.Count; i++) x[i] = WordFeatures.Extract(data[i].Text);
        var g = new double[WordFeatures.Dimension];
        for (int e = 0; e < epochs; e++)
        {
            Array.Clear(g);
            double gb = 0;
            for (int i = 0; i < data.Count; i++)
            {
                double p = Sigmoid(WordFeatures.Dot(c.w, c.b, x[i]));
                double d = p - (data[i].IsToxic ? 1 : 0);
                foreach (int f in x[i]) g[f] += d;
                gb += d;
            }

            for (int f = 0; f < g.Length; f++) c.w[f] -= learningRate * (float)(g[f] / data.Count + l2 * c.w[f]);
            c.b -= learningRate * (float)(gb / data.Count);
        }

        return c;
    }

    /// <summary>Fraction of <paramref name="data"/> classified correctly at threshold 0.5.</summary>
    public double Accuracy(IReadOnlyList<LabelledSentence> data)
    {
        int ok = 0;
        foreach (var s in data) ok += (Probability(s.Text) >= 0.5f) == s.IsToxic ? 1 : 0;
        return data.Count == 0 ? double.NaN : (double)ok / data.Count;
    }

    public float Probability(string text) => (float)Sigmoid(WordFeatures.Dot(w, b, WordFeatures.Extract(text ?? "")));

    public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (probabilities.Length != texts.Count) throw new ArgumentException($"probabilities has {probabilities.Length} elements, needs {texts.Count}.", nameof(probabilities));
        for (int i = 0; i < texts.Count; i++) probabilities[i] = Probability(texts[i]);
    }

    internal static double Sigmoid(double z) => z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));
}

/// <summary>
/// A pairwise (Bradley–Terry) reward model over <see cref="WordFeatures"/> of the response: r = w · φ(response) + b,
/// trained with −log σ(r_chosen − r_rejected) on preference pairs. Rewards are centred and scaled by the training
/// responses' mean and standard deviation, as a reward model's outputs are normalised before PPO.
/// </summary>
public sealed class LinearRewardModel : IRewardFunction
{
    private readonly float[] w = new float[WordFeatures.Dimension];
    private double mean, std = 1;

    /// <summary>Per-epoch mean pairwise loss and accuracy on the training pairs.</summary>
    public List<(double Loss, double Accuracy)> History { get; } = [];

    public static LinearRewardModel Train(IReadOnlyList<PreferencePair> pairs, int epochs, float learningRate = 0.5f, float l2 = 1e-4f)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) throw new ArgumentException("no preference pairs.", nameof(pairs));
        var m = new LinearRewardModel();
        var chosen = new int[pairs.Count][];
        var rejected = new int[pairs.Count][];
        for (int i = 0; i < pairs.Count; i++)
        {
            chosen[i] = WordFeatures.Extract(pairs[i].Chosen);
            rejected[i] = WordFeatures.Extract(pairs[i].Rejected);
        }

        var g = new double[WordFeatures.Dimension];
        for (int e = 0; e < epochs; e++)
        {
            Array.Clear(g);
            double loss = 0;
            int correct = 0;
            for (int i = 0; i < pairs.Count; i++)
            {
                double margin = WordFeatures.Dot(m.w, 0, chosen[i]) - WordFeatures.Dot(m.w, 0, rejected[i]);
                loss += margin >= 0 ? double.LogP1(Math.Exp(-margin)) : -margin + double.LogP1(Math.Exp(margin));
                correct += margin > 0 ? 1 : 0;
                double d = ToxicityClassifier.Sigmoid(margin) - 1; // d loss / d margin
                foreach (int f in chosen[i]) g[f] += d;
                foreach (int f in rejected[i]) g[f] -= d;
            }

            m.History.Add((loss / pairs.Count, (double)correct / pairs.Count));
            for (int f = 0; f < g.Length; f++) m.w[f] -= learningRate * (float)(g[f] / pairs.Count + l2 * m.w[f]);
        }

        var seen = new List<double>();
        foreach (var x in chosen) seen.Add(WordFeatures.Dot(m.w, 0, x));
        foreach (var x in rejected) seen.Add(WordFeatures.Dot(m.w, 0, x));
        double mu = 0;
        foreach (double s in seen) mu += s;
        mu /= seen.Count;
        double v = 0;
        foreach (double s in seen) v += (s - mu) * (s - mu);
        m.mean = mu;
        m.std = Math.Max(Math.Sqrt(v / seen.Count), 1e-6);
        return m;
    }

    /// <summary>Fraction of <paramref name="pairs"/> whose chosen response scores higher.</summary>
    public double Accuracy(IReadOnlyList<PreferencePair> pairs)
    {
        int ok = 0;
        foreach (var p in pairs) ok += Reward(p.Chosen) > Reward(p.Rejected) ? 1 : 0;
        return pairs.Count == 0 ? double.NaN : (double)ok / pairs.Count;
    }

    public float Reward(string response) => (float)((WordFeatures.Dot(w, 0, WordFeatures.Extract(response ?? "")) - mean) / std);

    public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
    {
        ArgumentNullException.ThrowIfNull(responses);
        if (rewards.Length != responses.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {responses.Count}.", nameof(rewards));
        for (int i = 0; i < responses.Count; i++) rewards[i] = Reward(responses[i]);
    }
}
