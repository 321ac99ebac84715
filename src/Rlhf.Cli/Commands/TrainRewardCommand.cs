using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Feedback;
using Rlhf.Reward;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf train-reward: preference pairs → a reward model (trunk + scalar head) in a run folder.</summary>
internal static class TrainRewardCommand
{
    public static Command Create()
    {
        var pairs = new Option<FileInfo>("--pairs") { Description = "pairs.jsonl: {prompt, chosen, rejected, margin?, preference?} per line", Required = true };
        var useMargins = CommonOptions.Flag("--use-margins", "subtract each pair's margin inside the sigmoid");
        var common = new TrainingOptions().WithDefaults(new RewardModelOptions());
        var command = new Command("train-reward", "Train a reward model on preference pairs (loss −log σ(r_chosen − r_rejected)).") { pairs, useMargins };
        common.AddTo(command);
        command.SetAction(parse =>
        {
            var outDir = parse.GetValue(common.Out)!;
            TrainingOptions.CheckOutFolder(outDir, parse.GetValue(common.Force));
            var data = PreferencePairs.Read(parse.GetValue(pairs)!.FullName);
            if (data.Count == 0) throw new Rlhf.IO.InvalidInputException($"{parse.GetValue(pairs)!.FullName}: no pairs");
            var options = common.Apply(parse, new RewardModelOptions { UseMargins = parse.GetValue(useMargins) });

            var tokenizer = common.LoadTokenizer(parse);
            var trunk = common.LoadTrunk(parse, tokenizer, options.MaxLength, options.Seed);
            options = options with { Lora = common.Lora(parse, trunk.Config.Family) };
            var trainer = new RewardTrainer(trunk, tokenizer, parse.GetValue(common.Tokenizer)!, options);
            // Built beside --out and swapped in at the end: a failed or killed run leaves the old folder as it was.
            using var staging = Rlhf.IO.AtomicDirectory.Stage(outDir.FullName);
            TrainingOptions.WriteJson(Path.Combine(staging.Path, "training_config.json"), new JsonObject
            {
                ["stage"] = "train-reward",
                ["pairs"] = parse.GetValue(pairs)!.FullName,
                ["model"] = parse.GetValue(common.Model),
                ["tokenizer"] = parse.GetValue(common.Tokenizer),
                ["trunk"] = JsonValue.Create(trunk.Config.ToString()),
                ["learning_rate"] = options.LearningRate,
                ["epochs"] = options.Epochs,
                ["batch_size"] = options.BatchSize,
                ["max_length"] = options.MaxLength,
                ["eval_fraction"] = options.EvalFraction,
                ["seed"] = options.Seed,
                ["lora_rank"] = options.Lora?.Rank ?? 0,
                ["use_margins"] = options.UseMargins,
                ["padding"] = parse.GetValue(common.Padding),
                ["max_grad_norm"] = options.MaxGradNorm,
                ["decay"] = options.Decay.ToString(),
            });
            var o = CliOutput.Of(parse);
            var log = new EpochMetricsLog(Path.Combine(staging.Path, "metrics.jsonl"), "train-reward epoch", options.Epochs);
            var result = o.WithProgress(p => trainer.Train(data, m => log.Add(m, p)));
            trainer.Save(staging.Path);
            staging.Commit();
            return o.Result(
                new JsonObject
                {
                    ["saved"] = outDir.FullName, ["train_pairs"] = result.TrainPairs, ["held_out_pairs"] = result.HeldOutPairs, ["reward_mean"] = result.RewardMean,
                    ["reward_std"] = result.RewardStd, ["last_epoch"] = log.Last?.DeepClone(),
                },
                $"reward model saved to {outDir.FullName} ({result.TrainPairs} training / {result.HeldOutPairs} held-out pairs; reward mean {result.RewardMean:F4}, std {result.RewardStd:F4})");
        });
        return command;
    }
}
