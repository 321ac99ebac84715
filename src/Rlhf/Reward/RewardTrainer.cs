using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlhf.Feedback;
using Rlhf.Model;
using Rlhf.Tokenizers;
using Rlhf.Training;

namespace Rlhf.Reward;

/// <summary>What a reward-model training run produced.</summary>
public sealed record RewardTrainingResult(IReadOnlyList<HeadEpochMetrics> Epochs, int TrainPairs, int HeldOutPairs, double RewardMean, double RewardStd);

/// <summary>
/// Trains a reward model: a trunk (fresh or from a checkpoint; every weight or a LoRA adapter) with a scalar
/// <see cref="ScoreHead"/> at the last real token, on preference pairs with <see cref="PairwiseLoss"/>. Each step packs
/// its pairs as 2·B rows (the B chosen rows, then the B rejected rows, same prompt each), runs the trunk once, and
/// back-propagates −[p·log σ(r_c − r_r − m) + (1−p)·log σ(−(r_c − r_r − m))] through the head and the trunk.
/// Deterministic for a seed: the split, the shuffle per epoch and every initialisation come from it.
/// </summary>
public sealed class RewardTrainer
{
    private readonly TokenRows encoder;
    private readonly string tokenizerName;
    private int[] tokens = [], indices = [];
    private float[] mask = [], scores = [], dScores = [], dHidden = [], margins = [], preferences = [];
    private List<int[]> rows = [];
    private IReadOnlyList<PreferencePair> pairs = [];
    private readonly Stopwatch dataClock = new(), engineClock = new();

    public RewardTrainer(TransformerModel trunk, ITokenizer tokenizer, string tokenizerName, RewardModelOptions options)
    {
        Model = trunk ?? throw new ArgumentNullException(nameof(trunk));
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(tokenizerName);
        Options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        if (tokenizer.VocabSize > trunk.Config.VocabSize)
            throw new ArgumentException(TokenizerVocabulary.Mismatch(tokenizer, trunk.Config.VocabSize) + ".", nameof(tokenizer));
        if (options.MaxLength > trunk.Config.ContextLength)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxLength, $"MaxLength exceeds the model's context {trunk.Config.ContextLength}.");
        this.tokenizerName = tokenizerName;
        encoder = new TokenRows(tokenizer, options.MaxLength, options.Padding);
        if (options.Lora is { } lora) trunk.AttachAdapter(lora, options.Seed ^ 0x4C6F5241UL);
        Head = ScoreHead.Reward(trunk.Config.ModelDim);
        Head.InitializeRandom(options.Seed ^ 0x48656164UL, 1f / MathF.Sqrt(trunk.Config.ModelDim + 1));
    }

    public TransformerModel Model { get; }

    public ScoreHead Head { get; }

    public RewardModelOptions Options { get; }


    public TokenRows Encoder => encoder;

    /// <summary>Time spent packing batches (outside the engine) since the trainer was made.</summary>
    public TimeSpan DataTime => dataClock.Elapsed;

    /// <summary>Time spent in forward, loss, backward and the optimizer since the trainer was made.</summary>
    public TimeSpan EngineTime => engineClock.Elapsed;

    /// <summary>A fresh trunk with GPT-2-style random weights from <paramref name="seed"/>.</summary>
    public static TransformerModel NewTrunk(TransformerConfig config, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var model = new TransformerModel(config);
        model.InitializeRandom(seed);
        return model;
    }

    /// <summary>
    /// Tokenises <paramref name="data"/> (row 2i = prompt + chosen, 2i+1 = prompt + rejected); afterwards
    /// <see cref="Step"/> and <see cref="Evaluate"/> take pair indices into it.
    /// </summary>
    public void SetData(IReadOnlyList<PreferencePair> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("no pairs.", nameof(data));
        var encoded = new List<int[]>(2 * data.Count);
        for (int i = 0; i < data.Count; i++)
        {
            var p = data[i] ?? throw new ArgumentException($"pair {i} is null.", nameof(data));
            if (!(p.Preference >= 0 && p.Preference <= 1)) throw new ArgumentOutOfRangeException(nameof(data), p.Preference, $"pair {i}: preference {p.Preference} is outside [0, 1].");
            encoded.Add(encoder.Encode(p.Prompt, p.Chosen));
            encoded.Add(encoder.Encode(p.Prompt, p.Rejected));
        }

        rows = encoded;
        pairs = data;
    }

    /// <summary>Trains on <paramref name="data"/> for <see cref="RewardModelOptions.Epochs"/>, reporting each epoch.</summary>
    public RewardTrainingResult Train(IReadOnlyList<PreferencePair> data, Action<HeadEpochMetrics>? onEpoch = null)
    {
        SetData(data);
        var (train, heldOut, epochs) = HeadTrainingLoop.Run(Model, Head, data.Count, Options.Settings, Step, indices => Evaluate(indices), onEpoch);
        var (mean, std) = RewardStatistics(train);
        RewardMean = mean;
        RewardStd = std;
        return new RewardTrainingResult(epochs, train.Length, heldOut.Length, mean, std);
    }

    public double RewardMean { get; private set; }

    public double RewardStd { get; private set; } = 1;

    /// <summary>One optimizer step over the pairs <paramref name="pairIndices"/> of the data set (see <see cref="SetData"/>); returns the batch loss and accuracy.</summary>
    internal (double Loss, double Accuracy) Step(HeadTrainingStep trainer, ReadOnlySpan<int> pairIndices)
    {
        trainer.ZeroGradients();
        var result = AccumulateGradients(pairIndices);
        engineClock.Start();
        trainer.Apply();
        engineClock.Stop();
        return result;
    }

    /// <summary>
    /// Forward, loss and backward over the pairs <paramref name="pairIndices"/>: adds d(mean loss)/dθ into the trunk's
    /// trainable gradients and the head's, without stepping. Returns the batch loss and accuracy.
    /// </summary>
    internal (double Loss, double Accuracy) AccumulateGradients(ReadOnlySpan<int> pairIndices)
    {
        int b = pairIndices.Length, d = Model.Config.ModelDim;
        dataClock.Start();
        int seq = PackPairs(pairIndices);
        dataClock.Stop();
        engineClock.Start();
        int rowsN = 2 * b;
        var m = mask.AsSpan(0, rowsN * seq);
        Model.Forward(tokens.AsSpan(0, rowsN * seq), m, rowsN, seq, computeLogits: false);
        Grow(ref scores, rowsN);
        Grow(ref dScores, rowsN);
        Head.Forward(Model.FinalHidden, m, rowsN, seq, scores.AsSpan(0, rowsN));
        var (loss, acc) = PairwiseLoss.Compute(scores.AsSpan(0, b), scores.AsSpan(b, b),
            Options.UseMargins ? margins.AsSpan(0, b) : default, preferences.AsSpan(0, b), dScores.AsSpan(0, b), dScores.AsSpan(b, b));
        Grow(ref dHidden, rowsN * seq * d);
        var dh = dHidden.AsSpan(0, rowsN * seq * d);
        dh.Clear();
        Head.Backward(dScores.AsSpan(0, rowsN), Model.FinalHidden, m, rowsN, seq, dh);
        Model.Backward(default, dh);
        engineClock.Stop();
        return (loss, acc);
    }

    /// <summary>Builds a step runner for benchmarks that drive <see cref="Step"/> directly.</summary>
    internal HeadTrainingStep CreateStepRunner(int totalSteps) =>
        new(Model, Head, Options.WeightDecay, Options.MaxGradNorm, new LearningRateSchedule(Options.LearningRate, 0, Math.Max(totalSteps, 1), DecayKind.Constant));

    /// <summary>Mean pairwise loss and accuracy over the pairs <paramref name="pairIndices"/>, forward only.</summary>
    public (double Loss, double Accuracy) Evaluate(ReadOnlySpan<int> pairIndices)
    {
        int n = pairIndices.Length;
        var chosenRows = new List<int[]>(n);
        var rejectedRows = new List<int[]>(n);
        var marg = new float[n];
        var pref = new float[n];
        foreach (int i in pairIndices)
        {
            chosenRows.Add(rows[2 * i]);
            rejectedRows.Add(rows[2 * i + 1]);
        }

        for (int k = 0; k < n; k++)
        {
            marg[k] = (float)pairs[pairIndices[k]].Margin;
            pref[k] = (float)pairs[pairIndices[k]].Preference;
        }

        var scorer = new SequenceScorer(Model, Head, encoder, Options.BatchSize * 2);
        var c = new float[n];
        var r = new float[n];
        scorer.Score(chosenRows, c);
        scorer.Score(rejectedRows, r);
        return PairwiseLoss.Compute(c, r, Options.UseMargins ? marg : default, pref, new float[n], new float[n]);
    }

    /// <summary>Saves trunk (a LoRA adapter merged in), head and head_config.json ({"reward_mean", "reward_std"}) into <paramref name="directory"/>.</summary>
    public void Save(string directory)
    {
        if (Model.Adapter != null) Model.MergeAdapter();
        ScoredModelFiles.Save(directory, Model, Head, tokenizerName, encoder, RewardModel.Kind,
            new JsonObject { ["reward_mean"] = RewardMean, ["reward_std"] = RewardStd });
    }

    private (double Mean, double Std) RewardStatistics(int[] train)
    {
        var all = new List<int[]>(2 * train.Length);
        foreach (int i in train)
        {
            all.Add(rows[2 * i]);
            all.Add(rows[2 * i + 1]);
        }

        var s = new float[all.Count];
        new SequenceScorer(Model, Head, encoder, Options.BatchSize * 2).Score(all, s);
        double mean = 0;
        foreach (float v in s) mean += v;
        mean /= s.Length;
        double var = 0;
        foreach (float v in s) var += (v - mean) * (v - mean);
        double std = Math.Sqrt(var / s.Length);
        return (mean, std > 0 ? std : 1);
    }

    private int PackPairs(ReadOnlySpan<int> pairIndices)
    {
        int b = pairIndices.Length;
        Grow(ref indices, 2 * b);
        Grow(ref margins, b);
        Grow(ref preferences, b);
        for (int k = 0; k < b; k++)
        {
            int i = pairIndices[k];
            if ((uint)i >= (uint)pairs.Count) throw new ArgumentOutOfRangeException(nameof(pairIndices), i, $"pairIndices[{k}] = {i} is outside [0, {pairs.Count}).");
            indices[k] = 2 * i;
            indices[b + k] = 2 * i + 1;
            margins[k] = (float)pairs[i].Margin;
            preferences[k] = (float)pairs[i].Preference;
        }

        return TokenRows.Pack(rows, indices.AsSpan(0, 2 * b), encoder.Padding, encoder.PadId, ref tokens, ref mask);
    }

    private static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new T[length];
    }
}
