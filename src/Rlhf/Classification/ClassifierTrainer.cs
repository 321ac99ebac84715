using System.Text.Json.Nodes;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Classification;

/// <summary>
/// Trains a sequence classifier: a trunk (fresh or from a checkpoint; every weight or LoRA) with a C-way
/// <see cref="ScoreHead"/> at the last real token, softmax cross-entropy (<see cref="ClassificationLoss"/>) back-propagated
/// through head and trunk. Class i is <see cref="Labels"/>[i]. Deterministic for a seed.
/// </summary>
public sealed class ClassifierTrainer
{
    private readonly TokenRows encoder;
    private readonly string tokenizerName;
    private readonly Dictionary<string, int> labelIndex = new(StringComparer.Ordinal);
    private int[] tokens = [], targets = [];
    private float[] mask = [], logits = [], dLogits = [], dHidden = [];
    private List<int[]> rows = [];
    private int[] rowTargets = [];

    public ClassifierTrainer(TransformerModel trunk, ITokenizer tokenizer, string tokenizerName, IReadOnlyList<string> labels, ClassifierOptions options)
    {
        Model = trunk ?? throw new ArgumentNullException(nameof(trunk));
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(tokenizerName);
        ArgumentNullException.ThrowIfNull(labels);
        Options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        if (labels.Count < 2) throw new ArgumentException($"a classifier needs at least 2 labels, got {labels.Count}.", nameof(labels));
        for (int i = 0; i < labels.Count; i++)
        {
            if (!labelIndex.TryAdd(labels[i], i)) throw new ArgumentException($"labels[{i}] = '{labels[i]}' is a duplicate.", nameof(labels));
        }

        if (tokenizer.VocabSize > trunk.Config.VocabSize)
            throw new ArgumentException(TokenizerVocabulary.Mismatch(tokenizer, trunk.Config.VocabSize) + ".", nameof(tokenizer));
        if (options.MaxLength > trunk.Config.ContextLength)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxLength, $"MaxLength exceeds the model's context {trunk.Config.ContextLength}.");
        Labels = [.. labels];
        this.tokenizerName = tokenizerName;
        encoder = new TokenRows(tokenizer, options.MaxLength, options.Padding);
        if (options.Lora is { } lora) trunk.AttachAdapter(lora, options.Seed ^ 0x4C6F5241UL);
        Head = ScoreHead.Classification(trunk.Config.ModelDim, labels.Count);
        Head.InitializeRandom(options.Seed ^ 0x48656164UL, 1f / MathF.Sqrt(trunk.Config.ModelDim + 1));
    }

    public TransformerModel Model { get; }

    public ScoreHead Head { get; }

    public ClassifierOptions Options { get; }


    public IReadOnlyList<string> Labels { get; }

    public ClassifierTrainingResult Train(IReadOnlyList<LabelledText> data, Action<HeadEpochMetrics>? onEpoch = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count < 2) throw new ArgumentException($"need at least 2 examples, got {data.Count}.", nameof(data));
        rows = new List<int[]>(data.Count);
        rowTargets = new int[data.Count];
        for (int i = 0; i < data.Count; i++)
        {
            var x = data[i] ?? throw new ArgumentException($"example {i} is null.", nameof(data));
            if (!labelIndex.TryGetValue(x.Label, out int y)) throw new ArgumentException($"example {i} has label '{x.Label}', not one of [{string.Join(", ", Labels)}].", nameof(data));
            rows.Add(encoder.Encode("", x.Text));
            rowTargets[i] = y;
        }

        var (train, heldOut, epochs) = HeadTrainingLoop.Run(Model, Head, data.Count, Options.Settings, Step, indices => Evaluate(indices), onEpoch);
        return new ClassifierTrainingResult(epochs, train.Length, heldOut.Length, Labels);
    }

    /// <summary>Mean cross-entropy and accuracy over the examples <paramref name="indices"/> of the training data, forward only.</summary>
    public (double Loss, double Accuracy) Evaluate(ReadOnlySpan<int> indices)
    {
        int n = indices.Length, c = Labels.Count;
        var sel = new List<int[]>(n);
        var y = new int[n];
        for (int k = 0; k < n; k++)
        {
            sel.Add(rows[indices[k]]);
            y[k] = rowTargets[indices[k]];
        }

        var z = new float[n * c];
        new SequenceScorer(Model, Head, encoder, Options.BatchSize).Score(sel, z);
        return ClassificationLoss.Compute(z, y, c, new float[n * c]);
    }

    /// <summary>Saves trunk (LoRA merged), head and head_config.json with {"labels": [...]}.</summary>
    public void Save(string directory)
    {
        if (Model.Adapter != null) Model.MergeAdapter();
        var labels = new JsonArray();
        foreach (var l in Labels) labels.Add(l);
        ScoredModelFiles.Save(directory, Model, Head, tokenizerName, encoder, SequenceClassifier.Kind, new JsonObject { ["labels"] = labels });
    }

    private (double Loss, double Accuracy) Step(HeadTrainingStep step, ReadOnlySpan<int> batch)
    {
        int b = batch.Length, c = Labels.Count, d = Model.Config.ModelDim;
        if (targets.Length < b) targets = new int[b];
        for (int k = 0; k < b; k++) targets[k] = rowTargets[batch[k]];
        int seq = TokenRows.Pack(rows, batch, encoder.Padding, encoder.PadId, ref tokens, ref mask);
        step.ZeroGradients();
        var m = mask.AsSpan(0, b * seq);
        Model.Forward(tokens.AsSpan(0, b * seq), m, b, seq, computeLogits: false);
        if (logits.Length < b * c) logits = new float[b * c];
        if (dLogits.Length < b * c) dLogits = new float[b * c];
        Head.Forward(Model.FinalHidden, m, b, seq, logits.AsSpan(0, b * c));
        var result = ClassificationLoss.Compute(logits.AsSpan(0, b * c), targets.AsSpan(0, b), c, dLogits.AsSpan(0, b * c));
        if (dHidden.Length < b * seq * d) dHidden = new float[b * seq * d];
        var dh = dHidden.AsSpan(0, b * seq * d);
        dh.Clear();
        Head.Backward(dLogits.AsSpan(0, b * c), Model.FinalHidden, m, b, seq, dh);
        Model.Backward(default, dh);
        step.Apply();
        return result;
    }
}
