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
            if (dir.Exists && dir.EnumerateFileSystemInfos().Any() && !parse.GetValue(force)) throw new OutputExistsException(dir.FullName);
            CaiCommand.CheckPositive(parse.GetValue(steps), "--steps");
            CaiCommand.CheckPositive(parse.GetValue(batch), "--batch-size");
            if (!(parse.GetValue(lr) > 0)) throw new InvalidInputException($"--lr must be positive, got {parse.GetValue(lr)}");
            double h = parse.GetValue(held);
            if (!(h >= 0 && h < 1)) throw new InvalidInputException($"--held-out must be in [0, 1), got {h}");
            if (parse.GetValue(lora) < 0) throw new InvalidInputException($"--lora-rank must be >= 0, got {parse.GetValue(lora)}");
            if (parse.GetValue(maxSeq) < 4) throw new InvalidInputException($"--max-seq must be at least 4, got {parse.GetValue(maxSeq)}");
            var options = d with
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), WarmupSteps = parse.GetValue(warmup),
                Decay = Enum.Parse<DecayKind>(parse.GetValue(decay)!, ignoreCase: true), HeldOutFraction = h, EvalEvery = parse.GetValue(evalEvery),
                LoraRank = parse.GetValue(lora), LoraAlpha = parse.GetValue(alpha), MaxSeq = parse.GetValue(maxSeq), Seed = parse.GetValue(seed),
                Device = DeviceOption.Pick(parse, d.Device),
            };
            var r = o.WithProgress(p => CaiJobs.Sft(parse.GetValue(model)!, parse.GetValue(tokenizer)!, parse.GetValue(data)!.FullName, ChatFormat.Named(parse.GetValue(chat)!),
                options, dir.FullName, log: null, onStep: m => p.Report("sft", m.Step, m.Steps,
                    string.Create(CultureInfo.InvariantCulture, $"loss {m.Loss:F4}") + (m.HeldOutLoss is double x ? string.Create(CultureInfo.InvariantCulture, $" held-out {x:F4}") : ""))));
            return o.Result(r,
                $"trained {r.Steps} step(s) on {r.TrainExamples} example(s); last loss {r.LastTrainLoss:F4}" +
                (r.FinalHeldOutLoss is double f ? $"; held-out loss {r.InitialHeldOutLoss:F4} → {f:F4} ({r.HeldOutExamples} example(s))" : "") +
                $"; model in {r.ModelDirectory}" + (r.AdapterDirectory is null ? "" : $", adapter in {r.AdapterDirectory}"));
        });
        return command;
    }
}
