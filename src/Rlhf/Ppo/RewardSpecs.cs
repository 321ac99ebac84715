using System.Globalization;
using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.Classification;
using Rlhf.IO;
using Rlhf.Onnx;
using Rlhf.Reward;

namespace Rlhf.Ppo;

/// <summary>
/// Rewards and toxicity scorers named on the command line. Forms:
/// <list type="bullet">
/// <item><c>keyword:WORD</c> — a toy reward (or scorer) from one word;</item>
/// <item><c>DIR</c> — a reward model saved by <c>rlhf train-reward</c>;</item>
/// <item><c>DIR#CLASS</c> — a classifier saved by <c>rlhf train-classifier</c>; CLASS is a label name or index: as a
/// reward, the logit of that (wanted) class; as a toxicity scorer, the probability of that (unwanted) class;</item>
/// <item><c>FILE.onnx#CLASS</c> — any ONNX sequence classifier (labels from its config.json, tokenizer from its folder).</item>
/// </list>
/// </summary>
public static class RewardSpecs
{
    public static IRewardFunction? TryReward(string spec)
    {
        var (path, cls) = Split(spec);
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            return new OnnxSequenceClassifier(Existing(path, spec), cls ?? throw Missing(spec, "the wanted class"));
        }

        if (!Directory.Exists(path)) return null;
        string kind = KindOf(path);
        if (kind == RewardModel.Kind)
        {
            if (cls is not null) throw new InvalidInputException($"reward '{spec}': {path} is a reward model; '#{cls}' applies to classifiers only.");
            return ModelFiles.Load($"reward '{spec}'", () => RewardModel.Load(path));
        }

        var classifier = ModelFiles.Load($"reward '{spec}'", () => SequenceClassifier.Load(path));
        return classifier.AsReward(ClassIndex(classifier, cls ?? throw Missing(spec, "the wanted class"), spec));
    }

    public static IProbabilityScorer? TryScorer(string spec)
    {
        var (path, cls) = Split(spec);
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var onnx = new OnnxSequenceClassifier(Existing(path, spec), cls ?? throw Missing(spec, "the unwanted class"));
            return new OnnxScorer(onnx);
        }

        if (!Directory.Exists(path)) return null;
        var classifier = ModelFiles.Load($"scorer '{spec}'", () => SequenceClassifier.Load(path));
        return new ClassifierProbability(classifier, ClassIndex(classifier, cls ?? throw Missing(spec, "the unwanted class"), spec));
    }

    private static (string Path, string? Class) Split(string spec)
    {
        int hash = spec.LastIndexOf('#');
        return hash > 0 ? (spec[..hash], spec[(hash + 1)..]) : (spec, null);
    }

    private static string KindOf(string directory)
    {
        string path = Path.Combine(directory, ScoredModelFiles.ConfigFileName);
        if (!File.Exists(path)) throw new InvalidInputException($"{directory}: not a saved reward model or classifier (no {ScoredModelFiles.ConfigFileName})");
        return (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["kind"]?.GetValue<string>()
            ?? throw new InvalidInputException($"{path}: no \"kind\"");
    }

    private static int ClassIndex(SequenceClassifier classifier, string cls, string spec)
    {
        if (int.TryParse(cls, NumberStyles.None, CultureInfo.InvariantCulture, out int index))
        {
            return index < classifier.Classes
                ? index
                : throw new InvalidInputException($"'{spec}': class index {index} is outside 0..{classifier.Classes - 1}");
        }

        try
        {
            return classifier.ClassIndex(cls);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"'{spec}': {e.Message}");
        }
    }

    private static string Existing(string path, string spec) =>
        File.Exists(path) ? path : throw new InvalidInputException($"'{spec}': {path} does not exist");

    private static InvalidInputException Missing(string spec, string what) =>
        new($"'{spec}': a classifier needs {what} after '#', e.g. {spec}#toxic or {spec}#1");

    private sealed class ClassifierProbability(SequenceClassifier classifier, int classIndex) : IProbabilityScorer
    {
        public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
        {
            var all = new float[texts.Count * classifier.Classes];
            classifier.Probabilities(texts, all);
            for (int i = 0; i < texts.Count; i++) probabilities[i] = all[i * classifier.Classes + classIndex];
        }
    }

    /// <summary>Owns its ONNX session: callers that build scorers dispose them (IDisposable is tested for, as other
    /// scorers hold no native resources).</summary>
    private sealed class OnnxScorer(OnnxSequenceClassifier classifier) : IProbabilityScorer, IDisposable
    {
        public void Dispose() => classifier.Dispose();

        public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
        {
            var empty = new string[texts.Count];
            Array.Fill(empty, "");
            int classes = classifier.ClassCount;
            if (classes == 0) throw new InvalidInputException("the ONNX classifier's logits have no fixed class count; export it with a static [batch, classes] output.");
            var all = new float[texts.Count * classes];
            classifier.Probabilities(empty, texts, all);
            for (int i = 0; i < texts.Count; i++) probabilities[i] = all[i * classes + classifier.WantedClass];
        }
    }
}
