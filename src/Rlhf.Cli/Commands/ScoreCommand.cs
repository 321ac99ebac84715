using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.Json;
using Rlhf.Classification;
using Rlhf.Checkpoints;
using Rlhf.IO;
using Rlhf.Reward;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf score: reward-model or classifier scores for completions.jsonl or prompt/response JSONL.</summary>
internal static class ScoreCommand
{
    private const int ProgressChunk = 32;

    private sealed record Item(string PromptId, string CompletionId, string Prompt, string Response);

    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "a folder written by train-reward or train-classifier", Required = true };
        var input = new Option<FileInfo>("--input")
        {
            Description = "completions.jsonl ({prompt_id, prompt, completions: [{id, text}]}) or JSONL of {prompt?, response} (\"text\" also accepted)",
            Required = true,
        };
        var output = CommonOptions.Output("scores.jsonl to write: {prompt_id, completion_id, prompt, response, score, ...} per scored response");
        var label = new Option<string?>("--label") { Description = "classifier: the wanted class (name or index) whose logit is the score; default the last label" };
        var centred = CommonOptions.Flag("--centred", "reward model: (r − mean) / std over its training set");
        var force = CommonOptions.Force();
        var command = new Command("score", "Score responses with a reward model or a classifier.") { model, input, output, label, centred, force };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var o = CliOutput.Of(parse);
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            string dir = parse.GetValue(model)!.FullName;
            var items = ReadItems(parse.GetValue(input)!.FullName);
            var prompts = new List<string>(items.Count);
            var responses = new List<string>(items.Count);
            foreach (var it in items)
            {
                prompts.Add(it.Prompt);
                responses.Add(it.Response);
            }

            var scores = new float[items.Count];
            float[]? probabilities = null;
            string[]? labels = null;
            string kind = ReadKind(dir);
            Action<int, int> scoreChunk;
            if (kind == SequenceClassifier.Kind)
            {
                var classifier = ModelFiles.Load("--model", () => SequenceClassifier.Load(dir));
                var reward = classifier.AsReward(ClassOf(classifier, parse.GetValue(label)));
                int classes = classifier.Classes;
                probabilities = new float[items.Count * classes];
                labels = [.. classifier.Labels];
                scoreChunk = (start, n) =>
                {
                    reward.Score(prompts.GetRange(start, n), responses.GetRange(start, n), scores.AsSpan(start, n));
                    classifier.Probabilities(responses.GetRange(start, n), probabilities.AsSpan(start * classes, n * classes));
                };
            }
            else
            {
                var reward = ModelFiles.Load("--model", () => RewardModel.Load(dir));
                reward.Centred = parse.GetValue(centred);
                scoreChunk = (start, n) => reward.Score(prompts.GetRange(start, n), responses.GetRange(start, n), scores.AsSpan(start, n));
            }

            // Chunks only to report progress between them: each response's score depends on itself alone.
            var clock = Stopwatch.StartNew();
            o.WithProgress(p =>
            {
                p.Begin("score", items.Count);
                for (int start = 0; start < items.Count; start += ProgressChunk)
                {
                    int n = Math.Min(ProgressChunk, items.Count - start);
                    scoreChunk(start, n);
                    p.Report("score", start + n, items.Count, GenerateCompletionsCommand.Rate(start + n, clock.Elapsed.TotalSeconds, "items"));
                }

                return 0;
            });

            var indices = Enumerable.Range(0, items.Count);
            JsonLines.Write(outFile.FullName, indices, (w, i) =>
            {
                var it = items[i];
                w.WriteStartObject();
                w.WriteString("prompt_id", it.PromptId);
                w.WriteString("completion_id", it.CompletionId);
                w.WriteString("prompt", it.Prompt);
                w.WriteString("response", it.Response);
                w.WriteNumber("score", scores[i]);
                if (probabilities != null)
                {
                    w.WriteStartObject("probabilities");
                    for (int c = 0; c < labels!.Length; c++) w.WriteNumber(labels[c], probabilities[i * labels.Length + c]);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
            });
            double mean = 0;
            foreach (float x in scores) mean += x;
            return o.Result(
                new JsonObject { ["output"] = outFile.FullName, ["kind"] = kind, ["scored"] = items.Count, ["mean_score"] = mean / items.Count, ["seconds"] = clock.Elapsed.TotalSeconds },
                $"scored {items.Count} response(s) with the {kind} model; wrote {outFile.FullName}");
        });
        return command;
    }

    private static string ReadKind(string dir)
    {
        string path = Path.Combine(dir, ScoredModelFiles.ConfigFileName);
        if (!File.Exists(path)) throw new InvalidInputException($"--model: {dir} has no {ScoredModelFiles.ConfigFileName} (not written by train-reward or train-classifier)");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "";
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message})");
        }
    }

    private static int ClassOf(SequenceClassifier classifier, string? label)
    {
        if (label is null) return classifier.Classes - 1;
        for (int i = 0; i < classifier.Classes; i++)
        {
            if (classifier.Labels[i] == label) return i;
        }

        if (int.TryParse(label, out int index) && index >= 0 && index < classifier.Classes) return index;
        throw new InvalidInputException($"--label: '{label}' is not one of [{string.Join(", ", classifier.Labels)}] nor a class index below {classifier.Classes}");
    }

    private static List<Item> ReadItems(string path)
    {
        var items = new List<Item>();
        foreach (var line in JsonLines.Read(path))
        {
            if (line.TryGet("completions", out _))
            {
                var set = Feedback.CompletionSets.Parse(line);
                foreach (var c in set.Completions) items.Add(new Item(set.PromptId, c.Id, set.Prompt, c.Text));
                continue;
            }

            string prompt = line.TryGet("prompt", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "";
            string response = line.TryGet("response", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
                : line.TryGet("text", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
                : throw line.Error("needs a string \"response\" (or \"text\"), or a \"completions\" array");
            string id = line.TryGet("prompt_id", out var pid) && pid.ValueKind == JsonValueKind.String ? pid.GetString()! : $"line{line.Line}";
            items.Add(new Item(id, "", prompt, response));
        }

        if (items.Count == 0) throw new InvalidInputException($"{path}: nothing to score");
        return items;
    }
}
