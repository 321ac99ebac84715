using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Cai;
using Rlhf.IO;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf cai: Constitutional AI (critique–revision data, AI preference labels, the whole chain).</summary>
internal static class CaiCommand
{
    public static Command Create()
    {
        var cai = new Command("cai", "Constitutional AI: revise (critique–revision → sft.jsonl), prefs (AI-labelled soft preference pairs), run (the chain from one config).");
        cai.Subcommands.Add(Revise());
        cai.Subcommands.Add(Prefs());
        cai.Subcommands.Add(Run());
        cai.Subcommands.Add(ConstitutionCommand());
        return cai;
    }

    private static Option<string> Model(string description) => new("--model") { Description = description, Required = true };

    private static Option<string> Tokenizer() => new("--tokenizer")
    {
        Description = "llama2.c tok*.bin file, \"gpt2\" (GPT-2 BPE) or \"bytes\" (byte-level)",
        Required = true,
    };

    private static Option<FileInfo> Prompts() => new("--prompts")
    {
        Description = "red-team prompts: JSONL {\"prompt\"} or CSV with a \"prompt\" or \"goal\" column (AdvBench)",
        Required = true,
    };

    private static Option<int?> Limit() => new("--limit") { Description = "use only the first N prompts [default: all]" };

    private static Option<FileInfo?> ConstitutionFile() => new("--constitution") { Description = "constitution JSON [default: the built-in one; see `rlhf cai constitution`]" };

    private static readonly CaiSampling DefaultSampling = new();

    private static Option<string?> ChatFormatOption() => new("--chat-format")
    {
        Description = "plain, llama2, chatml, zephyr or llama3 [default: the constitution's]",
    };

    private static Option<int> MaxNew(int value) => new("--max-new-tokens") { Description = "tokens per generated reply", DefaultValueFactory = _ => value };

    private static Option<float> Temperature(float value) => new("--temperature") { Description = "sampling temperature (0 = greedy)", DefaultValueFactory = _ => value };

    private static Option<float> TopP(float value) => new("--top-p") { Description = "nucleus sampling threshold", DefaultValueFactory = _ => value };

    private static Option<ulong> Seed(ulong value) => new("--seed") { Description = "seed for principle choice and sampling", DefaultValueFactory = _ => value };

    private static Option<int> BatchSize() => new("--batch-size") { Description = "prompts generated together", DefaultValueFactory = _ => EngineLanguageModel.DefaultBatchSize };

    internal static Constitution LoadConstitution(FileInfo? file, string? chatFormat)
    {
        var c = file is null ? Constitution.Default : Constitution.Load(file.FullName);
        return chatFormat is null ? c : c with { ChatFormat = ChatFormat.Named(chatFormat) };
    }

    private static Command Revise()
    {
        var model = Model("model to answer, critique and revise: Hugging Face folder or llama2.c .bin");
        var tokenizer = Tokenizer();
        var prompts = Prompts();
        var limit = Limit();
        var constitution = ConstitutionFile();
        var chat = ChatFormatOption();
        var d = new RevisionOptions();
        var rounds = new Option<int>("--rounds") { Description = "critique–revision rounds per prompt", DefaultValueFactory = _ => d.Rounds };
        var maxNew = MaxNew(d.EffectiveSampling.MaxNewTokens);
        var temperature = Temperature(d.EffectiveSampling.Temperature);
        var topP = TopP(d.EffectiveSampling.TopP);
        var seed = Seed(d.Seed);
        var batch = BatchSize();
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for revisions.jsonl (full trace), sft.jsonl (prompt, final revision) and cli-config.json (the effective settings)", Required = true };
        var force = CommonOptions.Force();
        var command = new Command("revise", "Red-team prompts → reply → critique under a sampled principle → revision, N rounds.")
        {
            model, tokenizer, prompts, limit, constitution, chat, rounds, maxNew, temperature, topP, seed, batch, output, force,
        };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var cli = CliOutput.Of(parse);
            var dir = parse.GetValue(output)!;
            bool f = parse.GetValue(force);
            CommonOptions.CheckOverwrite(new FileInfo(Path.Combine(dir.FullName, CaiJobs.RevisionsFile)), f);
            CommonOptions.CheckOverwrite(new FileInfo(Path.Combine(dir.FullName, CaiJobs.SftDataFile)), f);
            int r = parse.GetValue(rounds);
            if (r < 0) throw new InvalidInputException("--rounds must be >= 0");
            var sampling = CheckSampling(parse.GetValue(maxNew), parse.GetValue(temperature), parse.GetValue(topP));
            OptionChecks.Positive(parse.GetValue(batch), "--batch-size");
            CheckLimit(parse.GetValue(limit));
            var c = LoadConstitution(parse.GetValue(constitution), parse.GetValue(chat));
            var traces = CaiJobs.Revise(parse.GetValue(model)!, parse.GetValue(tokenizer)!, parse.GetValue(prompts)!.FullName, parse.GetValue(limit), c,
                new RevisionOptions(r, sampling, parse.GetValue(seed)), parse.GetValue(batch), dir.FullName, cli.Log);
            ConfigFile.SaveEffective(parse, dir.FullName);
            string revisions = Path.Combine(dir.FullName, CaiJobs.RevisionsFile), sft = Path.Combine(dir.FullName, CaiJobs.SftDataFile);
            return cli.Result(new JsonObject { ["traces"] = traces.Count, ["revisions"] = revisions, ["sft"] = sft }, $"wrote {traces.Count} trace(s) to {revisions} and {sft}");
        });
        return command;
    }

    private static Command Prefs()
    {
        var model = Model("policy to sample replies from (the SFT model): Hugging Face folder or llama2.c .bin");
        var feedback = new Option<string?>("--feedback-model") { Description = "model that answers the comparison questions [default: --model]" };
        var d = new PreferenceOptions();
        var tokenizer = Tokenizer();
        var prompts = Prompts();
        var limit = Limit();
        var constitution = ConstitutionFile();
        var chat = ChatFormatOption();
        var responses = new Option<int>("--responses") { Description = "replies sampled per prompt; every pair is compared", DefaultValueFactory = _ => d.ResponsesPerPrompt };
        var principles = new Option<int>("--principles") { Description = "comparison principles sampled per pair (each asked in both option orders)", DefaultValueFactory = _ => d.PrinciplesPerComparison };
        var maxNew = MaxNew(d.EffectiveSampling.MaxNewTokens);
        var temperature = Temperature(d.EffectiveSampling.Temperature);
        var topP = TopP(d.EffectiveSampling.TopP);
        var seed = Seed(d.Seed);
        var batch = BatchSize();
        var output = CommonOptions.Output("pairs JSONL: {prompt, chosen, rejected, preference (soft label), votes, ...} per line");
        var force = CommonOptions.Force();
        var command = new Command("prefs", "Sample replies, let the feedback model compare them under sampled principles, write soft-labelled pairs (RLAIF).")
        {
            model, feedback, tokenizer, prompts, limit, constitution, chat, responses, principles, maxNew, temperature, topP, seed, batch, output, force,
        };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var cli = CliOutput.Of(parse);
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            if (parse.GetValue(responses) < 2) throw new InvalidInputException("--responses must be at least 2");
            OptionChecks.Positive(parse.GetValue(principles), "--principles");
            OptionChecks.Positive(parse.GetValue(batch), "--batch-size");
            CheckLimit(parse.GetValue(limit));
            var sampling = CheckSampling(parse.GetValue(maxNew), parse.GetValue(temperature), parse.GetValue(topP));
            var c = LoadConstitution(parse.GetValue(constitution), parse.GetValue(chat));
            var pairs = CaiJobs.Prefs(parse.GetValue(model)!, parse.GetValue(feedback), parse.GetValue(tokenizer)!, parse.GetValue(prompts)!.FullName, parse.GetValue(limit), c,
                new PreferenceOptions(parse.GetValue(responses), parse.GetValue(principles), sampling, parse.GetValue(seed)), parse.GetValue(batch), outFile.FullName, cli.Log);
            return cli.Result(new JsonObject { ["pairs"] = pairs.Count, ["output"] = outFile.FullName }, $"wrote {pairs.Count} pair(s) to {outFile.FullName}");
        });
        return command;
    }

    private static Command Run()
    {
        var config = new Option<FileInfo>("--config") { Description = "run configuration JSON (see the README: model, tokenizer, prompts, out, revise/sft/prefs/... sections)", Required = true };
        var force = CommonOptions.Force();
        var command = new Command("run", "The whole chain from one config: revise → sft → prefs → train-reward → ppo → eval.") { config, force };
        command.SetAction(parse =>
        {
            var cfg = CaiRunConfig.Load(parse.GetValue(config)!.FullName);
            if (Directory.Exists(cfg.Output) && Directory.EnumerateFileSystemEntries(cfg.Output).Any())
            {
                if (!parse.GetValue(force)) throw new OutputExistsException(cfg.Output);
                // A run writes its stages' folders one by one and does not resume, so --force starts from an empty folder:
                // an earlier, longer run's ppo checkpoints or eval/ would otherwise sit beside a run.json that does not list them.
                Rlhf.IO.AtomicDirectory.Empty(cfg.Output);
            }

            var cli = CliOutput.Of(parse);
            var outcomes = CaiStages.Pipeline().Run(new CaiRunContext(cfg, cli.Log));
            var stages = new JsonArray();
            var text = new List<string>();
            foreach (var o in outcomes)
            {
                stages.Add(new JsonObject { ["stage"] = o.Stage, ["status"] = o.Status.ToString() });
                text.Add($"{o.Stage}: {o.Status}");
            }

            return cli.Result(new JsonObject { ["output"] = Path.GetFullPath(cfg.Output), ["stages"] = stages }, string.Join("\n", text));
        });
        return command;
    }

    private static Command ConstitutionCommand()
    {
        var output = new Option<FileInfo?>("--out") { Description = "write to this file [default: none, standard output]" };
        var force = CommonOptions.Force();
        var command = new Command("constitution", "Print the built-in constitution (a starting point for your own).") { output, force };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var cli = CliOutput.Of(parse);
            string json = Constitution.DefaultJson();
            if (parse.GetValue(output) is { } f)
            {
                CommonOptions.CheckOverwrite(f, parse.GetValue(force));
                AtomicFile.WriteAllText(f.FullName, json);
                return cli.Result(new JsonObject { ["output"] = f.FullName }, $"wrote {f.FullName}");
            }

            // The constitution is the result itself (already JSON), so it is printed with --json and --quiet too.
            cli.Stdout.Write(json);
            return CliApp.Success;
        });
        return command;
    }

    internal static CaiSampling CheckSampling(int maxNew, float temperature, float topP)
    {
        OptionChecks.Positive(maxNew, "--max-new-tokens");
        OptionChecks.Temperature(temperature);
        if (!(topP > 0 && topP <= 1)) throw new InvalidInputException($"--top-p must be in (0, 1], got {topP}");
        return new CaiSampling(maxNew, temperature, 0, topP);
    }

    private static void CheckLimit(int? limit)
    {
        if (limit is <= 0) throw new InvalidInputException($"--limit must be positive, got {limit}");
    }
}

/// <summary>
/// The stages `rlhf cai run` uses. train-reward, ppo and eval plug in here (ICaiStage or DelegateStage reading
/// context.PairsPath / SftModelDirectory and writing RewardDirectory / PpoDirectory / EvalDirectory).
/// </summary>
internal static class CaiStages
{
    public static CaiPipeline Pipeline() => CaiRlStages.Pipeline();
}
