using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Rlhf.Feedback;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Reports;
using Rlhf.Tokenizers;

namespace Rlhf.Demo;

/// <summary>
/// <c>rlhf demo</c>: the whole mission offline, deterministically from a seed. 1) synthetic corpus, 2) pretrain (cached),
/// 3) completions ranked by three simulated labelers (one noisy, flagged by the agreement report), 4) pairs → reward
/// model, and an independent toxicity classifier as the evaluator, 5) PPO with LoRA and a KL penalty, before/after
/// evaluation and report.md with plots. The run directory is built under a hidden temporary name next to the target
/// and renamed into place only when complete, so an interrupted or failed run leaves no partial output.
/// </summary>
public static class DemoPipeline
{
    /// <summary>
    /// Runs every stage into <paramref name="runDirectory"/> (replaced only with <paramref name="force"/>). The pretrained
    /// model is cached under <paramref name="cacheRoot"/> (default <see cref="DemoPretraining.CacheRoot"/>).
    /// </summary>
    /// <exception cref="InvalidInputException">A bad setting, or the run directory exists without <paramref name="force"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> fired; nothing was left behind.</exception>
    public static DemoResult Run(
        DemoOptions options, string runDirectory, bool force = false, Action<DemoProgress>? progress = null, CancellationToken cancel = default, string? cacheRoot = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(runDirectory);
        options.Validate();
        string final = Path.GetFullPath(runDirectory);
        if ((Directory.Exists(final) || File.Exists(final)) && !force)
            throw new InvalidInputException($"{final} exists; pass --force to replace it.");
        string parent = Path.GetDirectoryName(final)!;
        Directory.CreateDirectory(parent);
        RemoveStalePartials(parent, Path.GetFileName(final));
        string temp = Path.Combine(parent, $".{Path.GetFileName(final)}.partial-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var result = Stages(options, temp, final, progress, cancel, cacheRoot);
            cancel.ThrowIfCancellationRequested();
            Replace(temp, final);
            return result;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>
    /// Deletes temporary run folders for the same target left by processes that no longer exist (a run killed
    /// outright cannot clean up after itself); folders of live processes are left alone.
    /// </summary>
    private static void RemoveStalePartials(string parent, string name)
    {
        string prefix = $".{name}.partial-";
        foreach (var d in Directory.GetDirectories(parent, prefix + "*"))
        {
            string rest = Path.GetFileName(d)[prefix.Length..];
            int dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (pid == Environment.ProcessId || IsRunning(pid)) continue;
            Directory.Delete(d, recursive: true);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Moves the finished <paramref name="temp"/> folder to <paramref name="final"/>, replacing what was there.</summary>
    private static void Replace(string temp, string final)
    {
        if (!Directory.Exists(final) && !File.Exists(final))
        {
            Directory.Move(temp, final);
            return;
        }

        string old = temp + ".old";
        if (File.Exists(final)) File.Move(final, old);
        else Directory.Move(final, old);
        Directory.Move(temp, final);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        else File.Delete(old);
    }

    private static DemoResult Stages(DemoOptions o, string dir, string final, Action<DemoProgress>? progress, CancellationToken cancel, string? cacheRoot)
    {
        var stages = new List<KeyValuePair<string, double>>();
        var clock = Stopwatch.StartNew();
        void Done(string stage)
        {
            stages.Add(new(stage, clock.Elapsed.TotalSeconds));
            clock.Restart();
            cancel.ThrowIfCancellationRequested();
        }

        var tok = new ByteTokenizer();
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(o, DemoOptions.Json));

        // 1-2) corpus and pretraining (cached across runs).
        progress?.Invoke(new DemoProgress("pretrain", 0, o.PretrainSteps, "loading or training"));
        var (model, cached, losses) = DemoPretraining.LoadOrTrain(o, (s, loss) =>
        {
            cancel.ThrowIfCancellationRequested();
            if (s % 10 == 0 || s == o.PretrainSteps) progress?.Invoke(new DemoProgress("pretrain", s, o.PretrainSteps, Inv($"loss {loss:F3}")));
        }, cacheRoot);
        Done("pretrain");

        // 3) completions, simulated labelers, agreement.
        progress?.Invoke(new DemoProgress("label", 0, 1, "sampling completions"));
        var sets = SampleCompletions(model, tok, o);
        var rankings = SimulatedLabelers.Rank(sets, o.NoisyLabelerRate, o.Seed);
        var byId = sets.ToDictionary(s => s.PromptId);
        WriteCompletions(Path.Combine(dir, "completions.jsonl"), sets);
        RankingFiles.Write(Path.Combine(dir, "rankings.jsonl"), rankings, byId);
        var agreement = AgreementReport.Compute(rankings);
        AtomicFile.WriteAllText(Path.Combine(dir, "agreement.json"), agreement.ToJson());
        var flagged = agreement.FlaggedLabelers.ToHashSet();
        Done("completions + labels");

        // 4) pairs from the labelers not flagged → reward model; the evaluator is trained on separate sentences.
        var pairs = new List<PreferencePair>();
        foreach (var r in rankings)
        {
            if (!flagged.Contains(r.Labeler)) pairs.AddRange(PairBuilder.FromRanking(byId[r.PromptId], r));
        }

        if (pairs.Count == 0) throw new InvalidOperationException("the labelers produced no preference pairs (every completion tied).");
        PreferencePairs.Write(Path.Combine(dir, "pairs.jsonl"), pairs);
        var (reward, rewardAccuracy) = TrainReward(model, tok, pairs, o, Path.Combine(dir, "reward-model"), progress, cancel);
        progress?.Invoke(new DemoProgress("reward", o.RewardEpochs, o.RewardEpochs, Inv($"pair accuracy {rewardAccuracy:P1}")));
        var sentences = ToxicitySentences.Generate(o.ClassifierSentences, o.Seed);
        var classifier = ToxicityClassifier.Train(sentences);
        double classifierAccuracy = classifier.Accuracy(ToxicitySentences.Generate(400, o.Seed + 1));
        Done("reward model + classifier");

        // 5) before → PPO → after.
        var prompts = new List<string>();
        foreach (var m in CustomerReplyCorpus.CustomerMessages) prompts.Add(CustomerReplyCorpus.PromptOf(m));
        var evalPrompts = new List<string>();
        for (int k = 0; k < o.EvalSamplesPerPrompt; k++) evalPrompts.AddRange(prompts);
        var evalOptions = new EvalOptions { MaxNewTokens = o.MaxNewTokens, Temperature = 1f, BatchSize = 16, Seed = o.Seed + 99 };
        var before = PpoEvaluation.Evaluate("before", model, false, tok, evalPrompts, classifier, reward, evalOptions);
        var beforeTexts = EvalSamples.Sample(model, false, tok, evalPrompts, evalOptions);
        Done("evaluate before");

        var ppoOptions = new PpoOptions
        {
            MaxSteps = o.PpoSteps, BatchSize = o.PpoBatch, MiniBatchSize = o.PpoMiniBatch, PpoEpochs = o.PpoEpochs,
            LearningRate = o.PpoLearningRate, MaxNewTokens = o.MaxNewTokens, InitialKlCoef = o.InitialKlCoef, TargetKl = o.TargetKl,
            KlHorizon = o.KlHorizon, LoraRank = o.LoraRank, LoraAlpha = 2f * o.LoraRank, MaxGradNorm = 1f, MissingEosPenalty = 1f, Seed = o.Seed,
        };
        var trainer = new PpoTrainer(model, tok, reward, prompts, ppoOptions);
        var ppoClock = Stopwatch.StartNew();
        var metrics = PpoRun.Run(trainer, Path.Combine(dir, "ppo"), false, m =>
        {
            cancel.ThrowIfCancellationRequested();
            progress?.Invoke(new DemoProgress("ppo", m.Iteration, o.PpoSteps, Inv($"reward {m.MeanScore:F2} kl {m.MeanKl:F2} β {m.KlCoef:F3}")));
        });
        Done("ppo");

        var after = PpoEvaluation.Evaluate("after", model, true, tok, evalPrompts, classifier, reward, evalOptions);
        var afterTexts = EvalSamples.Sample(model, true, tok, evalPrompts, evalOptions);
        PpoEvaluation.WriteReport(dir, [before, after]);
        var beforeTox = EvalSamples.Toxicity(classifier, beforeTexts);
        var afterTox = EvalSamples.Toxicity(classifier, afterTexts);
        EvalSamples.Write(Path.Combine(dir, "samples.jsonl"), evalPrompts, beforeTexts, beforeTox, afterTexts, afterTox);
        Done("evaluate after");

        var result = new DemoResult
        {
            RunDirectory = final, ReportPath = Path.Combine(final, "report.md"), PretrainCached = cached,
            FinalPretrainLoss = losses.Count > 0 ? losses[^1] : double.NaN, Completions = sets.Sum(s => s.Completions.Count),
            Rankings = rankings.Count, FlaggedLabelers = [.. flagged], Pairs = pairs.Count, RewardModelAccuracy = rewardAccuracy,
            ClassifierAccuracy = classifierAccuracy, PpoIterations = metrics.Count, TargetKl = o.TargetKl, MeanPpoKl = metrics.Count == 0 ? 0 : metrics.Average(m => m.MeanKl), Before = before, After = after,
            StageSeconds = stages,
        };
        DemoReport.Write(dir, result, o, DemoPretraining.CacheDirectory(o, cacheRoot), losses, metrics, agreement, beforeTox, afterTox);
        AtomicFile.WriteAllText(Path.Combine(dir, "summary.json"), JsonSerializer.Serialize(result, new JsonSerializerOptions(PpoRun.Json) { WriteIndented = true }));
        return result;
    }

    /// <summary>
    /// The reward model: with "engine", a copy of the pretrained trunk plus a scalar head trained on the pairs (saved to
    /// <paramref name="saveTo"/> and loaded back as a centred <see cref="Reward.RewardModel"/>); with "linear", the word model.
    /// Returns it and its accuracy on the pairs (every pair; the engine trainer also reports a held-out split per epoch).
    /// </summary>
    private static (Reward.IRewardFunction Reward, double Accuracy) TrainReward(
        TransformerModel pretrained, ByteTokenizer tok, List<PreferencePair> pairs, DemoOptions o, string saveTo, Action<DemoProgress>? progress, CancellationToken cancel)
    {
        if (o.RewardModel == "linear")
        {
            var linear = LinearRewardModel.Train(pairs, Math.Max(o.RewardEpochs, 20));
            return (linear, linear.Accuracy(pairs));
        }

        var trunk = new TransformerModel(pretrained.Config);
        pretrained.Parameters.CopyTo(trunk.Parameters, 0);
        var options = new Reward.RewardModelOptions
        {
            LearningRate = o.RewardLearningRate, Epochs = o.RewardEpochs, BatchSize = 8, MaxLength = pretrained.Config.ContextLength, Seed = o.Seed,
        };
        var trainer = new Reward.RewardTrainer(trunk, tok, "byte", options);
        trainer.Train(pairs, m =>
        {
            cancel.ThrowIfCancellationRequested();
            progress?.Invoke(new DemoProgress("reward", m.Epoch, o.RewardEpochs, Inv($"loss {m.TrainLoss:F3} held-out accuracy {m.HeldOutAccuracy:P1}")));
        });
        trainer.Save(saveTo);
        var rm = Reward.RewardModel.Load(saveTo);
        rm.Centred = true;
        var prompts = new string[pairs.Count];
        var chosen = new string[pairs.Count];
        var rejected = new string[pairs.Count];
        for (int i = 0; i < pairs.Count; i++) (prompts[i], chosen[i], rejected[i]) = (pairs[i].Prompt, pairs[i].Chosen, pairs[i].Rejected);
        var rc = new float[pairs.Count];
        var rr = new float[pairs.Count];
        rm.Score(prompts, chosen, rc);
        rm.Score(prompts, rejected, rr);
        int ok = 0;
        for (int i = 0; i < pairs.Count; i++) ok += rc[i] > rr[i] ? 1 : 0;
        return (rm, (double)ok / pairs.Count);
    }

    private static List<CompletionSet> SampleCompletions(TransformerModel model, ITokenizer tok, DemoOptions o)
    {
        var messages = CustomerReplyCorpus.CustomerMessages;
        var gen = new Generator(model);
        var sets = new List<CompletionSet>();
        for (int round = 0; round < o.LabelRounds; round++)
        {
            var ids = new List<int[]>();
            foreach (var m in messages)
            {
                for (int k = 0; k < o.CompletionsPerPrompt; k++) ids.Add([ByteTokenizer.Bos, .. tok.Encode(CustomerReplyCorpus.PromptOf(m))]);
            }

            var res = gen.Generate(ids, new GenerationOptions(o.MaxNewTokens, 1f, EosTokenId: ByteTokenizer.Eos, Seed: o.Seed * 1000 + (ulong)round,
                PadTokenId: ByteTokenizer.Eos, UseAdapter: false));
            for (int p = 0; p < messages.Count; p++)
            {
                var completions = new List<Completion>();
                for (int k = 0; k < o.CompletionsPerPrompt; k++)
                {
                    int row = p * o.CompletionsPerPrompt + k;
                    completions.Add(new Completion($"c{k}", tok.Decode(res.Tokens.AsSpan(row * res.MaxNewTokens, res.Lengths[row]))));
                }

                sets.Add(new CompletionSet($"r{round}-p{p}", CustomerReplyCorpus.PromptOf(messages[p]), completions));
            }
        }

        return sets;
    }

    private static void WriteCompletions(string path, IEnumerable<CompletionSet> sets) =>
        JsonLines.Write(path, sets, static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt_id", s.PromptId);
            w.WriteString("prompt", s.Prompt);
            w.WriteStartArray("completions");
            foreach (var c in s.Completions)
            {
                w.WriteStartObject();
                w.WriteString("id", c.Id);
                w.WriteString("text", c.Text);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
