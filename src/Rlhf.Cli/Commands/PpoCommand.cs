using System.CommandLine;
using System.Globalization;
using Rlhf.IO;
using Rlhf.Ppo;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf ppo: PPO of a policy (LoRA by default) against a reward; run directory with config, metrics, checkpoints.</summary>
internal static class PpoCommand
{
    public static Command Create()
    {
        var d = new PpoOptions();
        var model = new Option<string>("--model") { Description = "policy: HF folder (config.json + safetensors) or llama2.c .bin", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "'byte', 'gpt2', or a llama2.c tok*.bin file", Required = true };
        var prompts = new Option<string>("--prompts") { Description = "JSONL with a \"prompt\" per line, or demo:customer", Required = true };
        var reward = new Option<string>("--reward") { Description = "REWARD_MODEL_DIR, CLASSIFIER_DIR#WANTED_CLASS (its logit), MODEL.onnx#WANTED_CLASS or keyword:WORD [default: none; one is needed]" };
        var output = new Option<string>("--out") { Description = "run directory (config.json, metrics.jsonl, checkpoint-*/, final/)", Required = true };
        var resume = CommonOptions.Flag("--resume", "continue from the latest checkpoint in --out");
        var force = CommonOptions.Force();
        var steps = new Option<int>("--steps") { Description = "iterations (MaxSteps)", DefaultValueFactory = _ => d.MaxSteps };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => d.BatchSize };
        var mini = new Option<int>("--mini-batch-size") { DefaultValueFactory = _ => d.MiniBatchSize };
        var epochs = new Option<int>("--ppo-epochs") { DefaultValueFactory = _ => d.PpoEpochs };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => d.LearningRate };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => d.MaxNewTokens };
        var klCoef = new Option<float>("--init-kl-coef") { DefaultValueFactory = _ => d.InitialKlCoef };
        var fixedKl = CommonOptions.Flag("--fixed-kl", "keep β fixed (no adaptive controller)");
        var targetKl = new Option<float>("--target-kl")
        {
            DefaultValueFactory = _ => d.TargetKl,
            Description = "the adaptive KL controller's target (TRL's `target`, not TRL's `target_kl`, which is an early-stop threshold)",
        };
        var horizon = new Option<float>("--kl-horizon") { DefaultValueFactory = _ => d.KlHorizon };
        var estimator = new Option<KlEstimator>("--kl-estimator") { DefaultValueFactory = _ => d.KlEstimator };
        var gamma = new Option<float>("--gamma") { DefaultValueFactory = _ => d.Gamma };
        var lambda = new Option<float>("--lambda") { DefaultValueFactory = _ => d.Lambda };
        var clip = new Option<float>("--clip-range") { DefaultValueFactory = _ => d.ClipRange };
        var vclip = new Option<float>("--value-clip-range") { DefaultValueFactory = _ => d.ValueClipRange };
        var vf = new Option<float>("--vf-coef") { DefaultValueFactory = _ => d.ValueCoef };
        var ent = new Option<float>("--entropy-coef") { DefaultValueFactory = _ => d.EntropyCoef };
        var ratio = new Option<float>("--ratio-threshold")
        {
            Description = "skip a minibatch (no gradient) whose mean probability ratio exceeds this (TRL's ratio_threshold); Infinity never skips",
            DefaultValueFactory = _ => d.RatioThreshold,
        };
        var grad = new Option<float>("--max-grad-norm") { Description = "0 = no clipping", DefaultValueFactory = _ => d.MaxGradNorm };
        var rank = new Option<int>("--lora-rank") { Description = "0 = full fine-tuning with a frozen reference copy", DefaultValueFactory = _ => d.LoraRank };
        var temperature = new Option<float>("--temperature") { DefaultValueFactory = _ => d.Temperature };
        var threshold = new Option<float?>("--reward-threshold") { Description = "stop once an iteration's mean score reaches this [default: none, run every step]" };
        var every = new Option<int>("--checkpoint-every") { DefaultValueFactory = _ => d.CheckpointEvery };
        var eosPenalty = new Option<float>("--missing-eos-penalty") { DefaultValueFactory = _ => d.MissingEosPenalty };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => d.Seed };
        var rolloutBackend = new Option<RolloutBackend>("--rollout-backend")
        {
            Description = "who samples rollouts: engine, or ort (ONNX Runtime, LoRA weights fed as graph inputs)",
            DefaultValueFactory = _ => d.RolloutBackend,
        };
        var command = new Command("ppo", "Align a policy with PPO against a reward (KL-penalised, GAE, clipped updates).")
        {
            model, tokenizer, prompts, reward, output, resume, force, steps, batch, mini, epochs, lr, maxNew, klCoef, fixedKl,
            targetKl, horizon, estimator, gamma, lambda, clip, vclip, vf, ent, ratio, grad, rank, temperature, threshold, every, eosPenalty, seed, rolloutBackend,
        };
        var config = ConfigFile.AddTo(command, typeof(PpoOptions));
        DeviceOption.AddTo(command);
        command.SetAction(parse =>
        {
            var o = parse.GetValue(config) is { } file ? ConfigFile.Load(file.FullName, new PpoOptions(), PpoRun.Json) : new PpoOptions();
            var options = o with
            {
                MaxSteps = ConfigFile.Pick(parse, steps, o.MaxSteps), BatchSize = ConfigFile.Pick(parse, batch, o.BatchSize),
                MiniBatchSize = ConfigFile.Pick(parse, mini, o.MiniBatchSize), PpoEpochs = ConfigFile.Pick(parse, epochs, o.PpoEpochs),
                LearningRate = ConfigFile.Pick(parse, lr, o.LearningRate), MaxNewTokens = ConfigFile.Pick(parse, maxNew, o.MaxNewTokens),
                InitialKlCoef = ConfigFile.Pick(parse, klCoef, o.InitialKlCoef), AdaptiveKl = parse.GetValue(fixedKl) ? false : o.AdaptiveKl,
                TargetKl = ConfigFile.Pick(parse, targetKl, o.TargetKl), KlHorizon = ConfigFile.Pick(parse, horizon, o.KlHorizon),
                KlEstimator = ConfigFile.Pick(parse, estimator, o.KlEstimator), Gamma = ConfigFile.Pick(parse, gamma, o.Gamma),
                Lambda = ConfigFile.Pick(parse, lambda, o.Lambda), ClipRange = ConfigFile.Pick(parse, clip, o.ClipRange),
                ValueClipRange = ConfigFile.Pick(parse, vclip, o.ValueClipRange), ValueCoef = ConfigFile.Pick(parse, vf, o.ValueCoef),
                EntropyCoef = ConfigFile.Pick(parse, ent, o.EntropyCoef), RatioThreshold = ConfigFile.Pick(parse, ratio, o.RatioThreshold),
                MaxGradNorm = ConfigFile.Pick(parse, grad, o.MaxGradNorm),
                LoraRank = ConfigFile.Pick(parse, rank, o.LoraRank), Temperature = ConfigFile.Pick(parse, temperature, o.Temperature),
                RewardThreshold = ConfigFile.Pick(parse, threshold, o.RewardThreshold), CheckpointEvery = ConfigFile.Pick(parse, every, o.CheckpointEvery),
                MissingEosPenalty = ConfigFile.Pick(parse, eosPenalty, o.MissingEosPenalty), Seed = ConfigFile.Pick(parse, seed, o.Seed),
                RolloutBackend = ConfigFile.Pick(parse, rolloutBackend, o.RolloutBackend),
                Device = DeviceOption.Pick(parse, o.Device),
            };
            try
            {
                options.Validate();
            }
            catch (InvalidInputException e)
            {
                throw new InvalidInputException(OptionNames(e.Message, command));
            }

            string outDir = parse.GetValue(output)!;
            bool isResume = parse.GetValue(resume), isForce = parse.GetValue(force);
            if (isResume && isForce) throw new InvalidInputException("--resume continues the run in --out and --force replaces it; pass one of them");
            if (File.Exists(outDir)) throw new InvalidInputException($"--out: {Path.GetFullPath(outDir)} is a file, not a run folder");
            if (!isResume && !isForce && Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
                throw new OutputExistsException(outDir);
            var tok = PpoInputs.Tokenizer(parse.GetValue(tokenizer)!);
            var rewardFn = PpoInputs.Reward(parse.GetValue(reward), tok);
            using var rewardResources = rewardFn as IDisposable; // an ONNX reward's session; the trainer does not own it
            var promptList = PpoInputs.Prompts(parse.GetValue(prompts)!);
            var policy = PpoInputs.Model(parse.GetValue(model)!);
            using var trainer = new PpoTrainer(policy, tok, rewardFn, promptList, options);
            // The run folder fills as the run goes (checkpoints for --resume), so it cannot be swapped in at the end:
            // --force starts it empty, once the inputs loaded, so no checkpoint or metrics line of the old run is left
            // for this run's --resume to pick up.
            if (isForce) AtomicDirectory.Empty(outDir);
            var cli = CliOutput.Of(parse);
            var metrics = cli.WithProgress(p =>
            {
                return PpoRun.Run(trainer, outDir, isResume, m => p.Report("ppo", m.Iteration, options.MaxSteps, string.Create(CultureInfo.InvariantCulture,
                    $"score {m.MeanScore:F3}±{m.StdScore:F3} kl {m.MeanKl:F3} β {m.KlCoef:F4} ent {m.Entropy:F3} clip {m.ClipFraction:F3} approx-kl {m.ApproxKl:F4} pg {m.PolicyLoss:F4} vf {m.ValueLoss:F4} ev {m.ExplainedVariance:F2} len {m.MeanResponseLength:F1} {m.TokensPerSecond:F0} tok/s gen/ref/score/update {m.GenerationSeconds:F2}/{m.ReferenceSeconds:F2}/{m.ScoringSeconds:F2}/{m.UpdateSeconds:F2}s{Skipped(m)}")));
            });
            return cli.Result(new { runDirectory = Path.GetFullPath(outDir), iterations = trainer.Iteration, last = metrics.Count > 0 ? metrics[^1] : null },
                $"done: {trainer.Iteration} iteration(s); run directory {Path.GetFullPath(outDir)}");
        });
        return command;
    }

    // TRL warns for each minibatch it skips; here the iteration's progress line says how many it skipped.
    private static string Skipped(PpoMetrics m) =>
        m.SkippedMinibatches == 0 ? "" : $" skipped {m.SkippedMinibatches}/{m.MinibatchSteps} minibatches (mean ratio above --ratio-threshold)";

    /// <summary>
    /// <see cref="PpoOptions.Validate"/>'s message with each PpoOptions property that has an option of its own
    /// named as the option ("MiniBatchSize 9 exceeds BatchSize 4" → "--mini-batch-size 9 exceeds --batch-size 4").
    /// </summary>
    private static string OptionNames(string message, Command command)
    {
        foreach (var (property, option) in OptionOf)
            if (command.Options.Any(o => o.Name == option))
                message = System.Text.RegularExpressions.Regex.Replace(message, $@"\b{property}\b", option);
        return message;
    }

    // PpoOptions properties set by an option whose name differs from the property's.
    private static readonly (string Property, string Option)[] OptionOf =
    [
        (nameof(PpoOptions.MaxSteps), "--steps"), (nameof(PpoOptions.BatchSize), "--batch-size"), (nameof(PpoOptions.MiniBatchSize), "--mini-batch-size"),
        (nameof(PpoOptions.PpoEpochs), "--ppo-epochs"), (nameof(PpoOptions.LearningRate), "--lr"), (nameof(PpoOptions.MaxNewTokens), "--max-new-tokens"),
        (nameof(PpoOptions.InitialKlCoef), "--init-kl-coef"), (nameof(PpoOptions.TargetKl), "--target-kl"), (nameof(PpoOptions.KlHorizon), "--kl-horizon"),
        (nameof(PpoOptions.Gamma), "--gamma"), (nameof(PpoOptions.Lambda), "--lambda"), (nameof(PpoOptions.ClipRange), "--clip-range"),
        (nameof(PpoOptions.ValueClipRange), "--value-clip-range"), (nameof(PpoOptions.ValueCoef), "--vf-coef"), (nameof(PpoOptions.EntropyCoef), "--entropy-coef"),
        (nameof(PpoOptions.RatioThreshold), "--ratio-threshold"), (nameof(PpoOptions.MaxGradNorm), "--max-grad-norm"), (nameof(PpoOptions.LoraRank), "--lora-rank"),
        (nameof(PpoOptions.Temperature), "--temperature"),
        (nameof(PpoOptions.RewardThreshold), "--reward-threshold"), (nameof(PpoOptions.CheckpointEvery), "--checkpoint-every"),
        (nameof(PpoOptions.MissingEosPenalty), "--missing-eos-penalty"), (nameof(PpoOptions.RolloutBackend), "--rollout-backend"), (nameof(PpoOptions.Device), "--device"),
    ];
}
