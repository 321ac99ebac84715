using System.Text.Json;
using Rlhf.IO;
using Rlhf.Sft;
using Rlhf.Training;

namespace Rlhf.Cai;

/// <summary>
/// The configuration of `rlhf cai run` (one JSON file). Paths are relative to the file's folder. Sections
/// "revise", "sft", "prefs", "train_reward", "ppo", "eval" hold each stage's settings; <see cref="Section"/> hands a
/// stage its raw section, so stages added later read their own settings.
/// </summary>
public sealed class CaiRunConfig
{
    private static readonly JsonElement EmptySection = JsonSerializer.SerializeToElement(new Dictionary<string, int>());
    private readonly JsonElement root;

    private CaiRunConfig(JsonElement root, string source)
    {
        this.root = root;
        Source = source;
        BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(source)) ?? ".";
        Model = PathField("model", required: true)!;
        Tokenizer = String(root, "tokenizer", "tokenizer") is string t && (t is "gpt2" or "bytes") ? t
            : PathField("tokenizer", required: true)!;
        Prompts = PathField("prompts", required: true)!;
        Output = PathField("out", required: true)!;
        FeedbackModel = PathField("feedback_model", required: false);
        Limit = Int(root, "limit", "limit", 0) is int l and > 0 ? l : null;
        Seed = (ulong)Int(root, "seed", "seed", 0);
        BatchSize = Int(root, "batch_size", "batch_size", 8);
        string? constitution = PathField("constitution", required: false);
        Constitution = constitution is null ? Constitution.Default : Constitution.Load(constitution);
        ChatFormat = root.TryGetProperty("chat_format", out var cf) ? Constitution.ParseChatFormat(cf, source) : Constitution.ChatFormat;
        Constitution = Constitution with { ChatFormat = ChatFormat };
        if (BatchSize <= 0) throw new InvalidInputException($"{source}: batch_size must be positive");
        CheckKnownKeys();
        CheckStageSettings();
    }

    // The keys each part of the file may hold: a misspelt one ("round" for "rounds") used to be ignored silently,
    // as no other --config file of the CLI allows.
    private static readonly Dictionary<string, string[]> KnownKeys = new()
    {
        [""] = ["model", "tokenizer", "prompts", "out", "feedback_model", "limit", "seed", "batch_size", "constitution", "chat_format",
            "revise", "sft", "prefs", "train_reward", "ppo", "eval"],
        ["revise"] = ["rounds", "max_new_tokens", "temperature", "top_k", "top_p"],
        ["sft"] = ["steps", "batch_size", "learning_rate", "warmup_steps", "decay", "max_grad_norm", "weight_decay", "held_out_fraction",
            "eval_every", "lora_rank", "lora_alpha", "max_seq"],
        ["prefs"] = ["responses", "principles", "max_new_tokens", "temperature", "top_k", "top_p"],
        ["train_reward"] = ["learning_rate", "epochs", "batch_size", "max_length"],
        ["ppo"] = ["steps", "batch_size", "mini_batch_size", "ppo_epochs", "learning_rate", "max_new_tokens", "kl_coef", "lora_rank"],
        ["eval"] = ["scorer", "max_new_tokens"],
    };

    private void CheckKnownKeys()
    {
        foreach (var (section, keys) in KnownKeys)
        {
            var element = section.Length == 0 ? root : Section(section);
            foreach (var property in element.EnumerateObject())
            {
                if (Array.IndexOf(keys, property.Name) < 0)
                {
                    string where = section.Length == 0 ? property.Name : $"{section}.{property.Name}";
                    throw new InvalidInputException($"{Source}: unknown key {where} (known here: {string.Join(", ", keys)})");
                }
            }
        }
    }

    /// <summary>The stages' settings read and checked now, before any stage runs: a bad one used to surface only when its
    /// stage started, after the earlier stages had run, with an internal parameter's name.</summary>
    private void CheckStageSettings()
    {
        var revise = reviseOptions = ParseReviseOptions();
        var prefs = prefsOptions = ParsePrefsOptions();
        sftOptions = ParseSftOptions();
        foreach (var (name, sampling) in new[] { ("revise", revise.EffectiveSampling), ("prefs", prefs.EffectiveSampling) })
        {
            if (!(sampling.TopP > 0f && sampling.TopP <= 1f)) throw new InvalidInputException($"{Source}: {name}.top_p must be in (0, 1] (got {sampling.TopP})");
            if (sampling.MaxNewTokens <= 0) throw new InvalidInputException($"{Source}: {name}.max_new_tokens must be positive");
        }

        if (prefs.ResponsesPerPrompt < 2) throw new InvalidInputException($"{Source}: prefs.responses must be at least 2 (a preference compares two responses)");
        var eval = Section("eval");
        if (!eval.TryGetProperty("scorer", out var scorer) || scorer.ValueKind != JsonValueKind.String || scorer.GetString()!.Length == 0)
            throw new InvalidInputException($"{Source}: eval.scorer missing (keyword:WORD, CLASSIFIER_DIR#UNWANTED_CLASS or MODEL.onnx#UNWANTED_CLASS)");
        string spec = scorer.GetString()!;
        // Paths are relative to the config's folder, an ONNX model's too (it used to be read from the working directory).
        EvalScorer = spec.StartsWith("keyword:", StringComparison.Ordinal) ? spec : Resolve(spec);
    }

    /// <summary>eval.scorer with its path made absolute (relative to the config's folder).</summary>
    public string EvalScorer { get; private set; } = "";

    public string Source { get; }
    public string BaseDirectory { get; }
    public string Model { get; }
    public string Tokenizer { get; }
    public string Prompts { get; }
    public string Output { get; }
    public string? FeedbackModel { get; }
    public int? Limit { get; }
    public ulong Seed { get; }
    public int BatchSize { get; }
    public Constitution Constitution { get; }
    public ChatFormat ChatFormat { get; }

    public static CaiRunConfig Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: config file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{path}: expected a JSON object");
            return new CaiRunConfig(doc.RootElement.Clone(), path);
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>A stage's settings object (an empty object when absent).</summary>
    public JsonElement Section(string name)
    {
        if (!root.TryGetProperty(name, out var s) || s.ValueKind == JsonValueKind.Null) return EmptySection;
        if (s.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{Source}: {name} must be an object");
        return s;
    }

    /// <summary>An absolute path for a path written in the config (relative to its folder).</summary>
    public string Resolve(string path) => System.IO.Path.GetFullPath(System.IO.Path.Combine(BaseDirectory, path));

    // Read and checked once, in the constructor, before any stage runs.
    private RevisionOptions reviseOptions = null!;
    private SftOptions sftOptions = null!;
    private PreferenceOptions prefsOptions = null!;

    public RevisionOptions ReviseOptions() => reviseOptions;

    public SftOptions SftOptions() => sftOptions;

    public PreferenceOptions PrefsOptions() => prefsOptions;

    private RevisionOptions ParseReviseOptions()
    {
        var s = Section("revise");
        return new RevisionOptions(Int(s, "rounds", "revise.rounds", 1), Sampling(s, "revise", 0.7f), Seed);
    }

    private SftOptions ParseSftOptions()
    {
        var s = Section("sft");
        var d = new SftOptions();
        string decay = String(s, "decay", "sft.decay") ?? "cosine";
        return new SftOptions(
            Int(s, "steps", "sft.steps", d.Steps), Int(s, "batch_size", "sft.batch_size", d.BatchSize), Float(s, "learning_rate", "sft.learning_rate", d.LearningRate),
            Int(s, "warmup_steps", "sft.warmup_steps", d.WarmupSteps),
            Enum.TryParse<DecayKind>(decay, true, out var k) ? k : throw new InvalidInputException($"{Source}: sft.decay '{decay}' (constant, linear or cosine)"),
            Float(s, "max_grad_norm", "sft.max_grad_norm", d.MaxGradNorm), Float(s, "weight_decay", "sft.weight_decay", d.WeightDecay),
            Float(s, "held_out_fraction", "sft.held_out_fraction", (float)d.HeldOutFraction), Int(s, "eval_every", "sft.eval_every", 0),
            Int(s, "lora_rank", "sft.lora_rank", 0), Float(s, "lora_alpha", "sft.lora_alpha", d.LoraAlpha), Int(s, "max_seq", "sft.max_seq", d.MaxSeq), Seed);
    }

    private PreferenceOptions ParsePrefsOptions()
    {
        var s = Section("prefs");
        return new PreferenceOptions(Int(s, "responses", "prefs.responses", 2), Int(s, "principles", "prefs.principles", 2), Sampling(s, "prefs", 1f), Seed);
    }

    private CaiSampling Sampling(JsonElement s, string name, float temperature) => new(
        Int(s, "max_new_tokens", name + ".max_new_tokens", 128), Float(s, "temperature", name + ".temperature", temperature),
        Int(s, "top_k", name + ".top_k", 0), Float(s, "top_p", name + ".top_p", 0.95f));

    private string? PathField(string name, bool required)
    {
        string? v = String(root, name, name);
        if (v is null && required) throw new InvalidInputException($"{Source}: \"{name}\" missing (a path)");
        return v is null ? null : Resolve(v);
    }

    private string? String(JsonElement e, string name, string field)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String || v.GetString()!.Length == 0) throw new InvalidInputException($"{Source}: {field} must be a non-empty string");
        return v.GetString();
    }

    private int Int(JsonElement e, string name, string field, int fallback)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 0) throw new InvalidInputException($"{Source}: {field} must be a non-negative integer");
        return i;
    }

    private float Float(JsonElement e, string name, string field, float fallback)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !(v.GetDouble() >= 0)) throw new InvalidInputException($"{Source}: {field} must be a non-negative number");
        return (float)v.GetDouble();
    }
}

/// <summary>Where a run's files go, and the shared state stages hand on.</summary>
public sealed class CaiRunContext(CaiRunConfig config, Action<string> log)
{
    public CaiRunConfig Config { get; } = config;
    public Action<string> Log { get; } = log;
    public string Output => Config.Output;
    public string ReviseDirectory => Path.Combine(Output, "revise");
    public string RevisionsPath => Path.Combine(ReviseDirectory, CaiJobs.RevisionsFile);
    public string SftDataPath => Path.Combine(ReviseDirectory, CaiJobs.SftDataFile);
    public string SftRunDirectory => Path.Combine(Output, "sft");
    public string SftModelDirectory => Path.Combine(SftRunDirectory, "model");
    public string PairsPath => Path.Combine(Output, "prefs", "pairs.jsonl");
    /// <summary>For the train-reward stage: the reward model's run folder.</summary>
    public string RewardDirectory => Path.Combine(Output, "reward");
    /// <summary>For the PPO stage: the policy run folder.</summary>
    public string PpoDirectory => Path.Combine(Output, "ppo");
    /// <summary>For the eval stage: reports comparing the SFT and PPO policies.</summary>
    public string EvalDirectory => Path.Combine(Output, "eval");
}

/// <summary>One stage of `rlhf cai run`: reads what earlier stages wrote (paths in the context), writes its own.</summary>
public interface ICaiStage
{
    /// <summary>One of <see cref="CaiPipeline.StageOrder"/>.</summary>
    string Name { get; }

    void Run(CaiRunContext context);
}

/// <summary>A stage from a delegate (how the train-reward, PPO and eval stages plug in).</summary>
public sealed class DelegateStage(string name, Action<CaiRunContext> run) : ICaiStage
{
    public string Name { get; } = name;

    public void Run(CaiRunContext context) => run(context);
}

/// <summary>What happened to a stage in a run.</summary>
public sealed record CaiStageOutcome(string Stage, string Status, double Seconds);

/// <summary>
/// revise → sft → prefs → train-reward → ppo → eval. The first three are built in; the others are supplied by the
/// caller (<see cref="Create"/>); a stage nobody supplied is reported as "not available" and the chain goes on with
/// the rest only when they do not depend on it (everything after a missing stage is skipped).
/// </summary>
public sealed class CaiPipeline
{
    public static readonly string[] StageOrder = ["revise", "sft", "prefs", "train-reward", "ppo", "eval"];

    private readonly Dictionary<string, ICaiStage> stages = new(StringComparer.Ordinal);

    public CaiPipeline(IEnumerable<ICaiStage> stages)
    {
        ArgumentNullException.ThrowIfNull(stages);
        foreach (var s in stages)
        {
            if (Array.IndexOf(StageOrder, s.Name) < 0) throw new ArgumentException($"unknown stage '{s.Name}' (stages: {string.Join(", ", StageOrder)})", nameof(stages));
            if (!this.stages.TryAdd(s.Name, s)) throw new ArgumentException($"stage '{s.Name}' given twice", nameof(stages));
        }
    }

    /// <summary>The built-in revise, sft and prefs stages plus whichever of the later ones are given.</summary>
    public static CaiPipeline Create(ICaiStage? trainReward = null, ICaiStage? ppo = null, ICaiStage? eval = null)
    {
        var list = new List<ICaiStage> { new DelegateStage("revise", ReviseStage), new DelegateStage("sft", SftStage), new DelegateStage("prefs", PrefsStage) };
        if (trainReward != null) list.Add(trainReward);
        if (ppo != null) list.Add(ppo);
        if (eval != null) list.Add(eval);
        return new CaiPipeline(list);
    }

    public bool Has(string stage) => stages.ContainsKey(stage);

    /// <summary>Runs the stages in order; writes run.json (config source, stage outcomes) into the output folder.</summary>
    public List<CaiStageOutcome> Run(CaiRunContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Directory.CreateDirectory(context.Output);
        var outcomes = new List<CaiStageOutcome>();
        bool missing = false;
        foreach (var name in StageOrder)
        {
            if (missing || !stages.TryGetValue(name, out var stage))
            {
                outcomes.Add(new CaiStageOutcome(name, missing ? "skipped (an earlier stage is not available)" : "not available in this build", 0));
                context.Log($"[{name}] {outcomes[^1].Status}");
                missing = true;
                continue;
            }

            context.Log($"[{name}] start");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            stage.Run(context);
            outcomes.Add(new CaiStageOutcome(name, "done", sw.Elapsed.TotalSeconds));
            context.Log($"[{name}] done in {sw.Elapsed.TotalSeconds:F1} s");
            WriteSummary(context, outcomes);
        }

        WriteSummary(context, outcomes);
        return outcomes;
    }

    private static void WriteSummary(CaiRunContext context, List<CaiStageOutcome> outcomes) =>
        AtomicFile.WriteAllText(Path.Combine(context.Output, "run.json"), CaiJobs.Json(w =>
        {
            w.WriteString("config", Path.GetFullPath(context.Config.Source));
            w.WriteStartArray("stages");
            foreach (var o in outcomes)
            {
                w.WriteStartObject();
                w.WriteString("stage", o.Stage);
                w.WriteString("status", o.Status);
                w.WriteNumber("seconds", Math.Round(o.Seconds, 3));
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }));

    private static void ReviseStage(CaiRunContext x)
    {
        var c = x.Config;
        CaiJobs.Revise(c.Model, c.Tokenizer, c.Prompts, c.Limit, c.Constitution, c.ReviseOptions(), c.BatchSize, x.ReviseDirectory, x.Log);
    }

    private static void SftStage(CaiRunContext x)
    {
        var c = x.Config;
        CaiJobs.Sft(c.Model, c.Tokenizer, x.SftDataPath, c.ChatFormat, c.SftOptions(), x.SftRunDirectory, x.Log);
    }

    private static void PrefsStage(CaiRunContext x)
    {
        var c = x.Config;
        CaiJobs.Prefs(x.SftModelDirectory, c.FeedbackModel ?? x.SftModelDirectory, c.Tokenizer, c.Prompts, c.Limit, c.Constitution, c.PrefsOptions(), c.BatchSize, x.PairsPath, x.Log);
    }
}
