using System.CommandLine;
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
        var chat = new Option<string>("--chat-format") { Description = "how prompts are wrapped: plain, llama2, chatml, zephyr, llama3", DefaultValueFactory = _ => "plain" };
        var d = new SftOptions();
        var steps = new Option<int>("--steps") { Description = "optimizer steps", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch-size") { Description = "examples per step", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<float>("--lr") { Description = "peak learning rate (AdamW)", DefaultValueFactory = _ => d.LearningRate };
        var warmup = new Option<int>("--warmup-steps") { Description = "linear warmup steps", DefaultValueFactory = _ => 0 };
        var decay = new Option<string>("--decay") { Description = "constant, linear or cosine", DefaultValueFactory = _ => "cosine" };
        decay.AcceptOnlyFromAmong("constant", "linear", "cosine");
        var held = new Option<double>("--held-out") { Description = "fraction of examples kept for the held-out loss", DefaultValueFactory = _ => d.HeldOutFraction };
        var evalEvery = new Option<int>("--eval-every") { Description = "held-out loss every N steps (also at the end); 0 = end only", DefaultValueFactory = _ => 0 };
        var lora = new Option<int>("--lora-rank") { Description = "0 = full fine-tuning; > 0 = LoRA of this rank on q/v (c_attn for GPT-2)", DefaultValueFactory = _ => 0 };
        var alpha = new Option<float>("--lora-alpha") { Description = "LoRA alpha", DefaultValueFactory = _ => d.LoraAlpha };
        var maxSeq = new Option<int>("--max-seq") { Description = "longest token row (prompt is cut from the front first)", DefaultValueFactory = _ => d.MaxSeq };
        var seed = new Option<ulong>("--seed") { Description = "seed for the split, shuffling and LoRA init", DefaultValueFactory = _ => 0UL };
        var force = CommonOptions.Force();
        var command = new Command("sft", "Supervised fine-tuning (loss on response tokens only), full or LoRA, with a held-out loss.")
        {
            model, tokenizer, data, output, chat, steps, batch, lr, warmup, decay, held, evalEvery, lora, alpha, maxSeq, seed, force,
        };
        DeviceOption.AddTo(command);
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(output)!;
            if (dir.Exists && dir.EnumerateFileSystemInfos().Any() && !parse.GetValue(force)) throw new OutputExistsException(dir.FullName);
            CaiCommand.CheckPositive(parse.GetValue(steps), "--steps");
            CaiCommand.CheckPositive(parse.GetValue(batch), "--batch-size");
            if (!(parse.GetValue(lr) > 0)) throw new InvalidInputException($"--lr must be positive, got {parse.GetValue(lr)}");
            double h = parse.GetValue(held);
            if (!(h >= 0 && h < 1)) throw new InvalidInputException($"--held-out must be in [0, 1), got {h}");
            if (parse.GetValue(lora) < 0) throw new InvalidInputException($"--lora-rank must be >= 0, got {parse.GetValue(lora)}");
            if (parse.GetValue(maxSeq) < 4) throw new InvalidInputException($"--max-seq must be at least 4, got {parse.GetValue(maxSeq)}");
            var options = new SftOptions(parse.GetValue(steps), parse.GetValue(batch), parse.GetValue(lr), parse.GetValue(warmup),
                Enum.Parse<DecayKind>(parse.GetValue(decay)!, ignoreCase: true), d.MaxGradNorm, d.WeightDecay, h, parse.GetValue(evalEvery),
                parse.GetValue(lora), parse.GetValue(alpha), parse.GetValue(maxSeq), parse.GetValue(seed), DeviceOption.Pick(parse, d.Device));
            var err = parse.InvocationConfiguration.Error;
            var r = CaiJobs.Sft(parse.GetValue(model)!, parse.GetValue(tokenizer)!, parse.GetValue(data)!.FullName, ChatFormat.Named(parse.GetValue(chat)!), options, dir.FullName, m => err.WriteLine(m));
            parse.InvocationConfiguration.Output.WriteLine(
                $"trained {r.Steps} step(s) on {r.TrainExamples} example(s); last loss {r.LastTrainLoss:F4}" +
                (r.FinalHeldOutLoss is double f ? $"; held-out loss {r.InitialHeldOutLoss:F4} → {f:F4} ({r.HeldOutExamples} example(s))" : "") +
                $"; model in {r.ModelDirectory}" + (r.AdapterDirectory is null ? "" : $", adapter in {r.AdapterDirectory}"));
            return CliApp.Success;
        });
        return command;
    }
}
