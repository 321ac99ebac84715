using System.CommandLine;
using System.Globalization;
using Rlhf.Cai;
using Rlhf.IO;
using Rlhf.Sft;
using Rlhf.Training;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf sft: supervised fine-tuning on prompt/response pairs, loss on the response only.</summary>
internal static class SftCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "base model: Hugging Face folder or llama2.c .bin", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "llama2.c tok*.bin file, \"gpt2\" or \"bytes\"", Required = true };
        var data = new Option<FileInfo>("--data") { Description = "JSONL with {\"prompt\", \"response\"} per line (e.g. sft.jsonl from `rlhf cai revise`)", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "run folder: config.json, metrics.jsonl, model/ (and adapter/ with LoRA)", Required = true };
        var chat = new Option<string>("--chat-format") { Description = "how prompts are wrapped: plain, llama2, chatml, zephyr, llama3", DefaultValueFactory = _ => ChatFormat.Plain.Name };
        var d = new SftOptions();
        var steps = new Option<int>("--steps") { Description = "optimizer steps", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch-size") { Description = "examples per step", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<float>("--lr") { Description = "peak learning rate (AdamW)", DefaultValueFactory = _ => d.LearningRate };
        var warmup = new Option<int>("--warmup-steps") { Description = "linear warmup steps", DefaultValueFactory = _ => d.WarmupSteps };
        var decay = new Option<string>("--decay") { Description = "constant, linear or cosine", DefaultValueFactory = _ => d.Decay.ToString().ToLowerInvariant() };
        decay.AcceptOnlyFromAmong("constant", "linear", "cosine");
        var held = new Option<double>("--held-out") { Description = "fraction of examples kept for the held-out loss", DefaultValueFactory = _ => d.HeldOutFraction };
        var evalEvery = new Option<int>("--eval-every") { Description = "held-out loss every N steps (also at the end); 0 = end only", DefaultValueFactory = _ => d.EvalEvery };
        var lora = new Option<int>("--lora-rank") { Description = "0 = full fine-tuning; > 0 = LoRA of this rank on q/v (c_attn for GPT-2)", DefaultValueFactory = _ => d.LoraRank };
        var alpha = new Option<float>("--lora-alpha") { Description = "LoRA alpha", DefaultValueFactory = _ => d.LoraAlpha };
        var maxSeq = new Option<int>("--max-seq") { Description = "longest token row (prompt is cut from the front first)", DefaultValueFactory = _ => d.MaxSeq };
        var seed = new Option<ulong>("--seed") { Description = "seed for the split, shuffling and LoRA init", DefaultValueFactory = _ => d.Seed };
        var force = CommonOptions.Force();
        var command = new Command("sft", "Supervised fine-tuning (loss on response tokens only), full or LoRA, with a held-out loss.")
        {
            model, tokenizer, data, output, chat, steps, batch, lr, warmup, decay, held, evalEvery, lora, alpha, maxSeq, seed, force,
        };
        ConfigFile.AddTo(command);
        DeviceOption.AddTo(command);
        command.SetAction(parse =>
        {
            var o = CliOutput.Of(parse);
            var dir = parse.GetValue(output)!;
            TrainingOptions.CheckOutFolder(dir, parse.GetValue(force));
            // Every option is checked here, before anything is written, and named as typed (the library would name its record's property).
            OptionChecks.Positive(parse.GetValue(steps), "--steps");
            OptionChecks.Positive(parse.GetValue(batch), "--batch-size");
            OptionChecks.PositiveFinite(parse.GetValue(lr), "--lr");
            OptionChecks.NonNegative(parse.GetValue(warmup), "--warmup-steps");
            double h = parse.GetValue(held);
            if (!(h >= 0 && h < 1)) throw new InvalidInputException(Invariant($"--held-out must be in [0, 1), got {h}"));
            OptionChecks.NonNegative(parse.GetValue(evalEvery), "--eval-every");
            OptionChecks.NonNegative(parse.GetValue(lora), "--lora-rank");
            OptionChecks.PositiveFinite(parse.GetValue(alpha), "--lora-alpha");
            CheckMaxSeq(parse.GetValue(maxSeq), given: parse.GetResult(maxSeq) is { Implicit: false }, parse.GetValue(model)!);
            var options = d with
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), WarmupSteps = parse.GetValue(warmup),
                Decay = Enum.Parse<DecayKind>(parse.GetValue(decay)!, ignoreCase: true), HeldOutFraction = h, EvalEvery = parse.GetValue(evalEvery),
                LoraRank = parse.GetValue(lora), LoraAlpha = parse.GetValue(alpha), MaxSeq = parse.GetValue(maxSeq), Seed = parse.GetValue(seed),
                Device = DeviceOption.Pick(parse, d.Device),
            };
            // Built beside --out and swapped in at the end: a failed or killed run leaves the old folder as it was.
            using var staging = AtomicDirectory.Stage(dir.FullName);
            var r = o.WithProgress(p => CaiJobs.Sft(parse.GetValue(model)!, parse.GetValue(tokenizer)!, parse.GetValue(data)!.FullName, ChatFormat.Named(parse.GetValue(chat)!),
                options, staging.Path, log: null, onStep: m => p.Report("sft", m.Step, m.Steps,
                    string.Create(CultureInfo.InvariantCulture, $"loss {m.Loss:F4}") + (m.HeldOutLoss is double x ? string.Create(CultureInfo.InvariantCulture, $" held-out {x:F4}") : ""))));
            staging.Commit();
            r = r with { ModelDirectory = Moved(r.ModelDirectory, staging), AdapterDirectory = r.AdapterDirectory is { } a ? Moved(a, staging) : null };
            return o.Result(r,
                $"trained {r.Steps} step(s) on {r.TrainExamples} example(s); last loss {r.LastTrainLoss:F4}" +
                (r.FinalHeldOutLoss is double f ? $"; held-out loss {r.InitialHeldOutLoss:F4} → {f:F4} ({r.HeldOutExamples} example(s))" : "") +
                $"; model in {r.ModelDirectory}" + (r.AdapterDirectory is null ? "" : $", adapter in {r.AdapterDirectory}"));
        });
        return command;
    }

    /// <summary>
    /// The trainer cuts rows to the model's context; the default --max-seq may exceed a small model's context, but a
    /// length asked for that the model cannot take is bad input rather than silently shortened.
    /// </summary>
    private static void CheckMaxSeq(int maxSeq, bool given, string modelPath)
    {
        if (maxSeq < 4) throw new InvalidInputException($"--max-seq must be at least 4, got {maxSeq}");
        if (given && Rlhf.Checkpoints.CheckpointContext.TryRead(modelPath) is int context && maxSeq > context)
            throw new InvalidInputException($"--max-seq {maxSeq} exceeds the context of {modelPath} ({context} tokens)");
    }

    /// <summary>Where <paramref name="path"/>, written under the staging folder, is now that it was swapped into place.</summary>
    private static string Moved(string path, AtomicDirectory.Staging staging) => Path.Combine(staging.Target, Path.GetRelativePath(staging.Path, path));

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
