using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Cli.Commands;

/// <summary>Options shared by train-reward and train-classifier: the trunk, the tokenizer, the optimizer and the run folder.</summary>
internal sealed class TrainingOptions
{
    /// <summary>--model's default: no checkpoint, a new trunk sized by --layers/--dim/--heads.</summary>
    public const string Fresh = "fresh";

    /// <summary>The longest --max-length of a fresh trunk: 16× GPT-2's context, far beyond rows these trainers see.</summary>
    public const int MaxFreshContext = 16384;

    public Option<string> Tokenizer { get; } = new("--tokenizer") { Description = "\"byte\", \"gpt2\" or a llama2.c tok*.bin file", DefaultValueFactory = _ => "byte" };

    public Option<string> Model { get; } = new("--model") { Description = "start from this checkpoint (Hugging Face folder or llama2.c .bin); \"fresh\" trains a new GPT-2-style trunk", DefaultValueFactory = _ => Fresh };

    public Option<int> Layers { get; } = new("--layers") { Description = "fresh trunk: layers", DefaultValueFactory = _ => 2 };

    public Option<int> Dim { get; } = new("--dim") { Description = "fresh trunk: model width", DefaultValueFactory = _ => 64 };

    public Option<int> Heads { get; } = new("--heads") { Description = "fresh trunk: attention heads", DefaultValueFactory = _ => 4 };

    public Option<int> LoraRank { get; } = new("--lora-rank") { Description = "train a LoRA adapter of this rank on the trunk (0 = train every weight)", DefaultValueFactory = _ => 0 };

    public Option<float> LearningRate { get; } = new("--lr") { Description = "peak learning rate (linear decay)" };

    public Option<int> Epochs { get; } = new("--epochs") { Description = "passes over the training data" };

    public Option<int> BatchSize { get; } = new("--batch-size") { Description = "examples per optimizer step" };

    public Option<int> MaxLength { get; } = new("--max-length") { Description = "tokens per row (truncated from the left)" };

    public Option<double> EvalFraction { get; } = new("--eval-fraction") { Description = "fraction held out for evaluation" };

    public Option<ulong> Seed { get; } = new("--seed") { Description = "seed of the split, shuffle and initialisation" };

    public Option<string> Padding { get; } = new("--padding") { Description = "right or left" };

    public Option<DirectoryInfo> Out { get; } = new("--out") { Description = "run folder: the saved model, training_config.json and metrics.jsonl", Required = true };

    public Option<bool> Force { get; } = CommonOptions.Force();

    /// <summary>Shows the stage's library defaults in --help (the two trainers differ in batch size and length).</summary>
    public TrainingOptions WithDefaults(HeadTrainingOptions defaults)
    {
        Padding.DefaultValueFactory = _ => defaults.Padding == Reward.PaddingSide.Left ? "left" : "right";
        LearningRate.DefaultValueFactory = _ => defaults.LearningRate;
        Epochs.DefaultValueFactory = _ => defaults.Epochs;
        BatchSize.DefaultValueFactory = _ => defaults.BatchSize;
        MaxLength.DefaultValueFactory = _ => defaults.MaxLength;
        EvalFraction.DefaultValueFactory = _ => defaults.EvalFraction;
        Seed.DefaultValueFactory = _ => defaults.Seed;
        return this;
    }

    /// <summary>
    /// <paramref name="defaults"/> with the options given on the command line (or in --config), validated: a bad
    /// value is bad input (exit 2) naming the setting.
    /// </summary>
    public T Apply<T>(ParseResult parse, T defaults) where T : HeadTrainingOptions
    {
        HeadTrainingOptions options = defaults with
        {
            LearningRate = Or(parse, LearningRate, defaults.LearningRate),
            Epochs = Or(parse, Epochs, defaults.Epochs),
            BatchSize = Or(parse, BatchSize, defaults.BatchSize),
            MaxLength = Or(parse, MaxLength, defaults.MaxLength),
            EvalFraction = Or(parse, EvalFraction, defaults.EvalFraction),
            Seed = Or(parse, Seed, defaults.Seed),
            Padding = PaddingSide(parse),
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException(OptionError(e));
        }

        return (T)options;
    }

    /// <summary>
    /// The library's validation error in the command line's terms: "--epochs must be positive (got 0)" rather than
    /// "must be positive. (Parameter 'Epochs')". Settings without an option of their own keep their property name.
    /// </summary>
    private static string OptionError(ArgumentException e)
    {
        string name = e.ParamName switch
        {
            nameof(HeadTrainingOptions.LearningRate) => "--lr",
            nameof(HeadTrainingOptions.Epochs) => "--epochs",
            nameof(HeadTrainingOptions.BatchSize) => "--batch-size",
            nameof(HeadTrainingOptions.MaxLength) => "--max-length",
            nameof(HeadTrainingOptions.EvalFraction) => "--eval-fraction",
            _ => e.ParamName ?? "option",
        };
        string reason = e.Message;
        int cut = reason.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (cut >= 0) reason = reason[..cut];
        reason = reason.TrimEnd('.');
        return e is ArgumentOutOfRangeException { ActualValue: { } v }
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{name} {reason} (got {v})")
            : $"{name} {reason}";
    }

    public void AddTo(Command command)
    {
        Padding.AcceptOnlyFromAmong("right", "left");
        foreach (var o in new Option[] { Tokenizer, Model, Layers, Dim, Heads, LoraRank, LearningRate, Epochs, BatchSize, MaxLength, EvalFraction, Seed, Padding, Out, Force })
            command.Options.Add(o);
        ConfigFile.AddTo(command);
    }

    /// <summary>A non-empty existing run folder needs --force; a file where the folder should go is bad input.</summary>
    public static void CheckOutFolder(DirectoryInfo dir, bool force)
    {
        if (File.Exists(dir.FullName)) throw new InvalidInputException($"--out: {dir.FullName} is a file, not a run folder");
        if (dir.Exists && dir.EnumerateFileSystemInfos().Any() && !force) throw new OutputExistsException(dir.FullName);
    }

    public ITokenizer LoadTokenizer(ParseResult parse)
    {
        string spec = parse.GetValue(Tokenizer)!;
        try
        {
            return TokenizerLoader.Load(spec);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"--tokenizer: {e.Message}");
        }
    }

    /// <summary>The checkpoint given by --model, or a fresh GPT-2 trunk sized by --layers/--dim/--heads with context ≥ max length.</summary>
    public TransformerModel LoadTrunk(ParseResult parse, ITokenizer tokenizer, int maxLength, ulong seed)
    {
        string path = parse.GetValue(Model)!;
        if (path != Fresh)
        {
            if (!File.Exists(path) && !Directory.Exists(path)) throw new InvalidInputException($"--model: {path} does not exist");
            var model = ModelFiles.Load("--model", () => ModelCheckpoint.Load(path));
            if (maxLength > model.Config.ContextLength)
                throw new InvalidInputException($"--max-length {maxLength} exceeds the context of {path} ({model.Config.ContextLength} tokens)");
            return model;
        }

        // A fresh trunk's position table is sized by --max-length, so a huge value costs gigabytes before training starts.
        if (maxLength > MaxFreshContext)
            throw new InvalidInputException($"--max-length {maxLength} is too long for a fresh trunk (at most {MaxFreshContext})");

        try
        {
            var config = TransformerConfig.Gpt2(tokenizer.VocabSize, maxLength, parse.GetValue(Dim), parse.GetValue(Layers), parse.GetValue(Heads));
            return RewardTrainer.NewTrunk(config, seed);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"fresh trunk: {e.Message}");
        }
    }

    public LoraConfig? Lora(ParseResult parse, ModelFamily family)
    {
        int rank = parse.GetValue(LoraRank);
        if (rank < 0) throw new InvalidInputException($"--lora-rank must be >= 0, got {rank}");
        return rank == 0 ? null : LoraConfig.Default(family, rank, 2f * rank);
    }

    public PaddingSide PaddingSide(ParseResult parse) => parse.GetValue(Padding) == "left" ? Reward.PaddingSide.Left : Reward.PaddingSide.Right;

    /// <summary>The value of <paramref name="option"/> when given on the command line, else <paramref name="fallback"/> (the library default).</summary>
    public static T Or<T>(ParseResult parse, Option<T> option, T fallback) => parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option)! : fallback;

    public static void WriteJson(string path, JsonNode node) =>
        AtomicFile.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
