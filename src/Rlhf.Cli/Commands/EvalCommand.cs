using System.CommandLine;
using System.Diagnostics;
using Rlhf.Checkpoints;
using Rlhf.IO;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf eval: mean toxicity, reward and KL to the reference of a model before and after (its adapter off / on).</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var d = new EvalOptions();
        var model = new Option<string>("--model") { Description = "base model: HF folder or llama2.c .bin", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "'byte', 'gpt2', or a llama2.c tok*.bin file", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder (e.g. a PPO run's final/): evaluates before (base) and after (base + adapter) [default: none, before only]" };
        var prompts = new Option<string>("--prompts") { Description = "JSONL with a \"prompt\" per line, or demo:customer", Required = true };
        var scorer = new Option<string>("--scorer") { Description = "toxicity scorer: CLASSIFIER_DIR#UNWANTED_CLASS, MODEL.onnx#UNWANTED_CLASS or keyword:WORD", Required = true };
        var reward = new Option<string>("--reward") { Description = "optional reward for the mean-reward column: REWARD_MODEL_DIR, CLASSIFIER_DIR#WANTED_CLASS, MODEL.onnx#WANTED_CLASS or keyword:WORD [default: none]" };
        var output = new Option<string>("--out") { Description = "folder for eval.md, eval.json and cli-config.json (the effective settings) [default: none, print only]" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens sampled per response", DefaultValueFactory = _ => d.MaxNewTokens };
        var temperature = new Option<float>("--temperature") { Description = "sampling temperature (0 = greedy)", DefaultValueFactory = _ => d.Temperature };
        var batch = new Option<int>("--batch-size") { Description = "prompts sampled together", DefaultValueFactory = _ => d.BatchSize };
        var seed = new Option<ulong>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => d.Seed };
        var force = CommonOptions.Force();
        var command = new Command("eval", "Mean toxicity (probability of the unwanted class), reward and KL to the reference, before and after.")
        {
            model, tokenizer, adapter, prompts, scorer, reward, output, maxNew, temperature, batch, seed, force,
        };
        DeviceOption.AddTo(command);
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var cli = CliOutput.Of(parse);
            // Everything the user can get wrong is checked before the first sample: an evaluation can take a long time.
            string? outDir = parse.GetValue(output);
            if (outDir is not null) CheckOutput(outDir, parse.GetValue(force));
            int maxNewTokens = parse.GetValue(maxNew);
            OptionChecks.Positive(maxNewTokens, "--max-new-tokens");
            float temp = parse.GetValue(temperature);
            OptionChecks.Temperature(temp);
            OptionChecks.Positive(parse.GetValue(batch), "--batch-size");
            var tok = PpoInputs.Tokenizer(parse.GetValue(tokenizer)!);
            var sc = PpoInputs.Scorer(parse.GetValue(scorer), tok);
            using var scorerResources = sc as IDisposable; // an ONNX scorer's session
            var rw = parse.GetValue(reward) is { } r ? PpoInputs.Reward(r, tok) : null;
            using var rewardResources = rw as IDisposable;
            var ps = PpoInputs.Prompts(parse.GetValue(prompts)!);
            var m = PpoInputs.Model(parse.GetValue(model)!);
            if (tok.VocabSize != m.Config.VocabSize) throw new InvalidInputException($"--tokenizer: {TokenizerVocabulary.Mismatch(tok, m.Config.VocabSize)}.");
            // Each prompt keeps at least one token (its end) in front of the response.
            if (maxNewTokens >= m.Config.ContextLength)
                throw new InvalidInputException($"--max-new-tokens {maxNewTokens} leaves no room for a prompt in the model's context of {m.Config.ContextLength} tokens");
            // The adapter is attached now, so a bad one fails before the 'before' pass; that pass samples with it off.
            bool hasAdapter = parse.GetValue(adapter) is { } a;
            if (hasAdapter) ModelFiles.Load("--adapter", () => LoadAdapter(m, parse.GetValue(adapter)!));
            var o = d with { MaxNewTokens = maxNewTokens, Temperature = temp, BatchSize = parse.GetValue(batch), Seed = parse.GetValue(seed) };
            // Sampling and the KL's forward passes run on the device (opened before any work: a missing GPU exits 2).
            // The device copy takes the attached adapter with it.
            string device = DeviceOption.Value(parse);
            using var onDevice = device == "cpu" ? null : Rlhf.Compute.DeviceGenerator.Open(device, m);
            var sample = onDevice is null ? null : new Func<IReadOnlyList<int[]>, Rlhf.Model.GenerationOptions, Rlhf.Model.GenerationResult>(onDevice.Generate);
            using var scoreOnDevice = onDevice is null ? null : new Rlhf.Compute.DeviceResponseLogProbs(onDevice.Model);
            var clock = Stopwatch.StartNew();
            var results = cli.WithProgress(p =>
            {
                p.Begin("eval before", ps.Count);
                var r = new List<EvalResult> { PpoEvaluation.Evaluate("before", m, false, tok, ps, sc, rw, o, onBatch: n => p.Report("eval before", n, ps.Count, GenerateCompletionsCommand.Rate(n, clock.Elapsed.TotalSeconds, "items")), generate: sample, responseLogProbs: scoreOnDevice) };
                if (hasAdapter)
                {
                    var after = Stopwatch.StartNew();
                    p.Begin("eval after", ps.Count);
                    r.Add(PpoEvaluation.Evaluate("after", m, true, tok, ps, sc, rw, o, onBatch: n => p.Report("eval after", n, ps.Count, GenerateCompletionsCommand.Rate(n, after.Elapsed.TotalSeconds, "items")), generate: sample, responseLogProbs: scoreOnDevice));
                }

                return r;
            });
            if (outDir is not null)
            {
                // Each file is replaced atomically (temporary file, then rename): a reader sees the old or the new one.
                PpoEvaluation.WriteReport(outDir, results);
                ConfigFile.SaveEffective(parse, outDir);
            }

            return cli.Result(new { results }, PpoEvaluation.Table(results));
        });
        return command;
    }

    /// <summary>The files eval writes into --out.</summary>
    private static readonly string[] OutputFiles = [PpoEvaluation.MarkdownFileName, PpoEvaluation.JsonFileName, ConfigFile.EffectiveFileName];

    /// <summary>--out must be a folder (or not exist yet) and hold no earlier results unless --force.</summary>
    private static void CheckOutput(string dir, bool force)
    {
        if (File.Exists(dir)) throw new InvalidInputException($"--out: {Path.GetFullPath(dir)} is a file; eval writes a folder ({string.Join(", ", OutputFiles)}).");
        foreach (string name in OutputFiles) CommonOptions.CheckOverwrite(new FileInfo(Path.Combine(dir, name)), force);
    }

    /// <summary>Reads and attaches the PEFT adapter; its target modules and shapes are checked against the model.</summary>
    private static void LoadAdapter(Rlhf.Model.TransformerModel model, string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{Path.GetFullPath(directory)} is not a folder (a PEFT adapter: {Rlhf.Formats.PeftLoraAdapter.ConfigFileName} + {Rlhf.Formats.PeftLoraAdapter.WeightsFileName})");
        PpoInputs.LoadAdapter(model, directory);
    }
}
