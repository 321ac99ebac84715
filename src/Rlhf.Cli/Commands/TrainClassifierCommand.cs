using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Classification;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf train-classifier: labelled CSV/JSONL → a sequence classifier (trunk + C-way head) in a run folder.</summary>
internal static class TrainClassifierCommand
{
    public static Command Create()
    {
        var input = new Option<FileInfo>("--data") { Description = "labelled text: .csv with a header, or .jsonl", Required = true };
        var textColumn = new Option<string>("--text-column") { Description = "column / property holding the text", DefaultValueFactory = _ => "text" };
        var labelColumn = new Option<string>("--label-column") { Description = "column / property holding the label", DefaultValueFactory = _ => "label" };
        var common = new TrainingOptions().WithDefaults(new ClassifierOptions());
        var command = new Command("train-classifier", "Train a sequence classifier (cross-entropy over the labels found in the data).") { input, textColumn, labelColumn };
        common.AddTo(command);
        command.SetAction(parse =>
        {
            var outDir = parse.GetValue(common.Out)!;
            TrainingOptions.CheckOutFolder(outDir, parse.GetValue(common.Force));
            var data = LabelledTexts.Read(parse.GetValue(input)!.FullName, parse.GetValue(textColumn)!, parse.GetValue(labelColumn)!);
            var labels = LabelledTexts.LabelNames(data);
            if (labels.Length < 2) throw new Rlhf.IO.InvalidInputException($"{parse.GetValue(input)!.FullName}: needs at least 2 distinct labels, found {labels.Length}");
            var options = common.Apply(parse, new ClassifierOptions());

            var tokenizer = common.LoadTokenizer(parse);
            var trunk = common.LoadTrunk(parse, tokenizer, options.MaxLength, options.Seed);
            options = options with { Lora = common.Lora(parse, trunk.Config.Family) };
            var trainer = new ClassifierTrainer(trunk, tokenizer, parse.GetValue(common.Tokenizer)!, labels, options);
            // Built beside --out and swapped in at the end: a failed or killed run leaves the old folder as it was.
            using var staging = Rlhf.IO.AtomicDirectory.Stage(outDir.FullName);
            var labelArray = new JsonArray();
            foreach (var l in labels) labelArray.Add(l);
            TrainingOptions.WriteJson(Path.Combine(staging.Path, "training_config.json"), new JsonObject
            {
                ["stage"] = "train-classifier",
                ["data"] = parse.GetValue(input)!.FullName,
                ["text_column"] = parse.GetValue(textColumn),
                ["label_column"] = parse.GetValue(labelColumn),
                ["labels"] = labelArray,
                ["model"] = parse.GetValue(common.Model),
                ["tokenizer"] = parse.GetValue(common.Tokenizer),
                ["trunk"] = trunk.Config.ToString(),
                ["learning_rate"] = options.LearningRate,
                ["epochs"] = options.Epochs,
                ["batch_size"] = options.BatchSize,
                ["max_length"] = options.MaxLength,
                ["eval_fraction"] = options.EvalFraction,
                ["seed"] = options.Seed,
                ["lora_rank"] = options.Lora?.Rank ?? 0,
                ["padding"] = parse.GetValue(common.Padding),
            });
            var o = CliOutput.Of(parse);
            var log = new EpochMetricsLog(Path.Combine(staging.Path, "metrics.jsonl"), "train-classifier epoch", options.Epochs);
            var result = o.WithProgress(p => trainer.Train(data, m => log.Add(m, p)));
            trainer.Save(staging.Path);
            staging.Commit();
            return o.Result(
                new JsonObject { ["saved"] = outDir.FullName, ["train_count"] = result.TrainCount, ["held_out_count"] = result.HeldOutCount, ["labels"] = labelArray.DeepClone(), ["last_epoch"] = log.Last?.DeepClone() },
                $"classifier saved to {outDir.FullName} ({result.TrainCount} training / {result.HeldOutCount} held-out texts; labels {string.Join(", ", labels)})");
        });
        return command;
    }
}
