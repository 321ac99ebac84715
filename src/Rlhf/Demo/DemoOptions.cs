using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Demo;

/// <summary>
/// Every setting of <c>rlhf demo</c>. The defaults finish in a few minutes on a 2-core CPU; <see cref="Quick"/> is a
/// shortened run for tests. Everything derives from <see cref="Seed"/>, so two runs with the same options agree bit for bit.
/// </summary>
public sealed record DemoOptions
{
    public ulong Seed { get; init; } = 7;

    /// <summary>Exchanges in the pretraining corpus.</summary>
    public int CorpusSize { get; init; } = 4000;

    public int ModelDim { get; init; } = 64;

    public int Layers { get; init; } = 2;

    public int Heads { get; init; } = 4;

    public int ContextLength { get; init; } = 128;

    public int PretrainSteps { get; init; } = 800;

    public int PretrainBatch { get; init; } = 16;

    public float PretrainLearningRate { get; init; } = 6e-3f;

    /// <summary>Completions sampled per prompt for the labelers.</summary>
    public int CompletionsPerPrompt { get; init; } = 4;

    /// <summary>Times each customer message is used as a labelling prompt (each with fresh samples).</summary>
    public int LabelRounds { get; init; } = 4;

    /// <summary>Probability that the noisy labeler ignores the text and ranks at random.</summary>
    public double NoisyLabelerRate { get; init; } = 0.95;

    /// <summary>Labelled sentences the independent toxicity classifier (the evaluator) is trained on.</summary>
    public int ClassifierSentences { get; init; } = 2000;

    /// <summary>"engine": a transformer reward model (the pretrained trunk + a scalar head, <see cref="Reward.RewardTrainer"/>);
    /// "linear": a Bradley–Terry model over hashed words (<see cref="LinearRewardModel"/>), seconds to train.</summary>
    public string RewardModel { get; init; } = "engine";

    /// <summary>Epochs of reward-model training (the linear model takes full-batch epochs, so it wants more).</summary>
    public int RewardEpochs { get; init; } = 2;

    public float RewardLearningRate { get; init; } = 1e-3f;

    public int PpoSteps { get; init; } = 100;

    public int PpoBatch { get; init; } = 16;

    public int PpoMiniBatch { get; init; } = 8;

    public int PpoEpochs { get; init; } = 4;

    public float PpoLearningRate { get; init; } = 2e-3f;

    public int LoraRank { get; init; } = 8;

    public float InitialKlCoef { get; init; } = 0.15f;

    /// <summary>Target of the mean per-response KL (nats) for the adaptive β controller.</summary>
    public float TargetKl { get; init; } = 6f;

    /// <summary>Horizon (in rollouts) of the adaptive β controller: how fast β reacts to KL above or below target.</summary>
    public float KlHorizon { get; init; } = 1000f;

    public int MaxNewTokens { get; init; } = 80;

    /// <summary>Responses sampled per customer message for the before/after evaluation.</summary>
    public int EvalSamplesPerPrompt { get; init; } = 8;

    /// <summary>A shortened demo (a smaller corpus, fewer labels, PPO steps and samples) for tests and a first look.
    /// Pretraining keeps its full length: with 300 steps the trunk was too weak for the reward model, which then
    /// rewarded length rather than politeness, and PPO raised toxicity (seeds 7 and 2, measured 2026-11-28).</summary>
    public static DemoOptions Quick => new()
    {
        CorpusSize = 2000, LabelRounds = 2, ClassifierSentences = 800, PpoSteps = 40, EvalSamplesPerPrompt = 4,
    };

    /// <summary>Throws <see cref="InvalidInputException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        Positive(CorpusSize, nameof(CorpusSize));
        Positive(ModelDim, nameof(ModelDim));
        Positive(Layers, nameof(Layers));
        Positive(Heads, nameof(Heads));
        if (ModelDim % Heads != 0) throw new InvalidInputException($"ModelDim {ModelDim} is not a multiple of Heads {Heads}.");
        if (ContextLength < MaxNewTokens + 48) throw new InvalidInputException($"ContextLength {ContextLength} must be at least MaxNewTokens + 48 = {MaxNewTokens + 48}.");
        Positive(PretrainSteps, nameof(PretrainSteps));
        Positive(PretrainBatch, nameof(PretrainBatch));
        PositiveF(PretrainLearningRate, nameof(PretrainLearningRate));
        if (CompletionsPerPrompt < 2) throw new InvalidInputException($"CompletionsPerPrompt must be at least 2, got {CompletionsPerPrompt}.");
        Positive(LabelRounds, nameof(LabelRounds));
        if (!(NoisyLabelerRate >= 0 && NoisyLabelerRate <= 1)) throw new InvalidInputException($"NoisyLabelerRate must be in [0, 1], got {NoisyLabelerRate}.");
        if (ClassifierSentences < 10) throw new InvalidInputException($"ClassifierSentences must be at least 10, got {ClassifierSentences}.");
        Positive(RewardEpochs, nameof(RewardEpochs));
        if (RewardModel is not ("engine" or "linear")) throw new InvalidInputException($"RewardModel must be \"engine\" or \"linear\", got \"{RewardModel}\".");
        PositiveF(RewardLearningRate, nameof(RewardLearningRate));
        Positive(PpoSteps, nameof(PpoSteps));
        Positive(PpoBatch, nameof(PpoBatch));
        Positive(PpoMiniBatch, nameof(PpoMiniBatch));
        if (PpoMiniBatch > PpoBatch) throw new InvalidInputException($"PpoMiniBatch {PpoMiniBatch} exceeds PpoBatch {PpoBatch}.");
        Positive(PpoEpochs, nameof(PpoEpochs));
        PositiveF(PpoLearningRate, nameof(PpoLearningRate));
        Positive(LoraRank, nameof(LoraRank));
        if (!(InitialKlCoef >= 0 && float.IsFinite(InitialKlCoef))) throw new InvalidInputException($"InitialKlCoef must be >= 0 and finite, got {InitialKlCoef}.");
        PositiveF(TargetKl, nameof(TargetKl));
        PositiveF(KlHorizon, nameof(KlHorizon));
        Positive(MaxNewTokens, nameof(MaxNewTokens));
        Positive(EvalSamplesPerPrompt, nameof(EvalSamplesPerPrompt));
    }

    /// <summary>A short hash of the settings that shape the pretrained model and of the code that trains it: its cache
    /// key.</summary>
    public string PretrainKey()
    {
        // The engine's and kernels' module ids (the builds are deterministic, so they change exactly when that code
        // does): a change in training numerics must not leave users a model pretrained by older code.
        string key = string.Join(",", "v1", Seed, CorpusSize, ModelDim, Layers, Heads, ContextLength, PretrainSteps, PretrainBatch,
            PretrainLearningRate.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            typeof(DemoOptions).Assembly.ManifestModule.ModuleVersionId, typeof(Rlhf.Kernels.Gemm).Assembly.ManifestModule.ModuleVersionId);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];
    }

    /// <summary>JSON settings for demo config files (camelCase-insensitive property names, comments allowed).</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Reads a config file over <paramref name="defaults"/>: the file's properties replace the defaults' values.</summary>
    public static DemoOptions Load(string path, DemoOptions defaults)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"config file '{path}' does not exist.");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{path}: the config must be a JSON object.");
            // Merge: serialise the defaults, overlay the file's properties, read back (unknown names are rejected).
            var merged = JsonSerializer.SerializeToNode(defaults, Json)!.AsObject();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                string? name = null;
                foreach (var k in merged) if (string.Equals(k.Key, p.Name, StringComparison.OrdinalIgnoreCase)) name = k.Key;
                if (name is null) throw new InvalidInputException($"{path}: unknown setting '{p.Name}'.");
                merged[name] = System.Text.Json.Nodes.JsonNode.Parse(p.Value.GetRawText());
            }

            return merged.Deserialize<DemoOptions>(Json)!;
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: {e.Message}");
        }
    }

    private static void Positive(int v, string name)
    {
        if (v <= 0) throw new InvalidInputException($"{name} must be positive, got {v}.");
    }

    private static void PositiveF(float v, string name)
    {
        if (!(v > 0 && float.IsFinite(v))) throw new InvalidInputException($"{name} must be positive and finite, got {v}.");
    }
}
