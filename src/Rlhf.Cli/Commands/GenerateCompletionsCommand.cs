using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.Completions;
using Rlhf.Compute;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf generate-completions: prompts → k sampled completions per prompt, shuffled per row, for labeling.</summary>
internal static class GenerateCompletionsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face folder or llama2.c .bin checkpoint", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "\"byte\", \"gpt2\" or a llama2.c tok*.bin file", Required = true };
        var prompts = new Option<FileInfo>("--prompts") { Description = "prompts.jsonl: {prompt_id?, prompt} per line", Required = true };
        var d = CompletionGenerator.DefaultOptions;
        var k = new Option<int>("--k") { Description = "completions per prompt", DefaultValueFactory = _ => CompletionGenerator.DefaultK };
        var output = CommonOptions.Output("completions.jsonl to write");
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens to sample per completion at most", DefaultValueFactory = _ => d.MaxNewTokens };
        var temperature = new Option<float>("--temperature") { Description = "sampling temperature (0 = greedy)", DefaultValueFactory = _ => d.Temperature };
        var topK = new Option<int>("--top-k") { Description = "keep the k most likely tokens (0 = all)", DefaultValueFactory = _ => d.TopK };
        var topP = new Option<float>("--top-p") { Description = "nucleus sampling mass (1 = off)", DefaultValueFactory = _ => d.TopP };
        var seed = new Option<ulong>("--seed") { Description = "base seed: same seed, same file", DefaultValueFactory = _ => d.Seed };
        var force = CommonOptions.Force();
        var command = new Command("generate-completions", "Sample k completions per prompt for labelers (shown in a per-row shuffled order).")
        {
            model, tokenizer, prompts, k, output, maxNew, temperature, topK, topP, seed, force,
        };
        DeviceOption.AddTo(command);
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var o = CliOutput.Of(parse);
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            int count = parse.GetValue(k);
            if (count < 2) throw new InvalidInputException($"--k must be at least 2 (ranking needs two completions), got {count}");
            var options = d with { MaxNewTokens = parse.GetValue(maxNew), Temperature = parse.GetValue(temperature), TopK = parse.GetValue(topK), TopP = parse.GetValue(topP), Seed = parse.GetValue(seed) };
            OptionChecks.Positive(options.MaxNewTokens, "--max-new-tokens");
            OptionChecks.Temperature(options.Temperature);
            if (options.TopK < 0) throw new InvalidInputException($"--top-k must be >= 0, got {options.TopK}");
            if (!(options.TopP > 0 && options.TopP <= 1)) throw new InvalidInputException($"--top-p must be in (0, 1], got {options.TopP}");
            ITokenizer tok;
            try
            {
                tok = TokenizerLoader.Load(parse.GetValue(tokenizer)!);
            }
            catch (ArgumentException e)
            {
                throw new InvalidInputException($"--tokenizer: {e.Message}");
            }

            string modelPath = parse.GetValue(model)!;
            if (!File.Exists(modelPath) && !Directory.Exists(modelPath)) throw new InvalidInputException($"--model: {modelPath} does not exist");
            var records = CompletionGenerator.ReadPrompts(parse.GetValue(prompts)!.FullName);
            var m = ModelFiles.Load("--model", () => ModelCheckpoint.Load(modelPath));
            // A smaller tokenizer fails too: the model samples ids the tokenizer cannot decode (as eval and ppo check).
            if (tok.VocabSize != m.Config.VocabSize) throw new InvalidInputException($"--tokenizer: {TokenizerVocabulary.Mismatch(tok, m.Config.VocabSize)}");
            CheckContext(records, tok, options.MaxNewTokens, m.Config.ContextLength, parse.GetValue(prompts)!.FullName);
            // The device opens before any work, so a missing GPU exits 2 with nothing written.
            string device = DeviceOption.Value(parse);
            using var onDevice = device == "cpu" ? null : DeviceGenerator.Open(device, m);
            Func<IReadOnlyList<int[]>, GenerationOptions, GenerationResult> sample = onDevice is null ? new Generator(m).Generate : onDevice.Generate;
            var clock = Stopwatch.StartNew();
            // Rows also stop at the ids of the checkpoint's eos_token_id list (Llama 3 ends turns with <|eot_id|>).
            var sets = o.WithProgress(p => CompletionGenerator.Generate(sample, tok, records, count, options with { EosTokenIds = m.Config.EosTokenIds },
                done => p.Report("generate-completions", done, records.Count, Rate(done * count, clock.Elapsed.TotalSeconds, "completions"))));
            CompletionGenerator.Write(outFile.FullName, sets, options, modelPath);
            return o.Result(
                new JsonObject { ["output"] = outFile.FullName, ["prompts"] = sets.Count, ["k"] = count, ["seconds"] = clock.Elapsed.TotalSeconds },
                $"wrote {sets.Count} prompt(s) x {count} completions to {outFile.FullName}");
        });
        return command;
    }

    /// <summary>Every prompt (with its BOS) plus --max-new-tokens must fit the context; prompts are not truncated here.</summary>
    private static void CheckContext(IReadOnlyList<PromptRecord> records, ITokenizer tok, int maxNewTokens, int context, string path)
    {
        if (maxNewTokens >= context) throw new InvalidInputException($"--max-new-tokens {maxNewTokens} leaves no room for a prompt in the model's context of {context} tokens");
        foreach (var r in records)
        {
            int length = tok.Encode(r.Prompt).Length + (tok.BosId.HasValue ? 1 : 0);
            if (length + maxNewTokens > context)
                throw new InvalidInputException($"{path}: prompt '{r.PromptId}' has {length} tokens; with --max-new-tokens {maxNewTokens} it exceeds the model's context of {context} tokens");
        }
    }

    /// <summary>"12.3 items/s": the throughput shown as the key metric of item-by-item stages.</summary>
    internal static string Rate(double items, double seconds, string unit) =>
        string.Create(CultureInfo.InvariantCulture, $"{(seconds > 0 ? items / seconds : 0):F1} {unit}/s");
}
