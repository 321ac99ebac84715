using System.Globalization;
using System.Text;
using Rlhf.Demo;
using Rlhf.Feedback;
using Rlhf.IO;
using Rlhf.Ppo;

namespace Rlhf.Reports;

/// <summary>report.md and plots/*.png of a demo run.</summary>
public static class DemoReport
{
    public static readonly string[] PlotFiles =
        ["reward.png", "kl.png", "entropy.png", "clip-fraction.png", "toxicity.png", "agreement.png", "pretrain-loss.png"];

    /// <summary>The before/after summary table (Markdown, also printed by the CLI).</summary>
    public static string SummaryTable(DemoResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| | before | after | change |");
        sb.AppendLine("| --- | ---: | ---: | ---: |");
        sb.AppendLine(Inv($"| mean toxicity (classifier) | {r.Before.MeanToxicity:F4} | {r.After.MeanToxicity:F4} | {-r.ToxicityReduction:+0.0%;-0.0%} |"));
        sb.AppendLine(Inv($"| mean reward (reward model) | {r.Before.MeanReward:F3} | {r.After.MeanReward:F3} | {r.After.MeanReward - r.Before.MeanReward:+0.000;-0.000} |"));
        sb.AppendLine(Inv($"| mean KL to reference (nats) | {r.Before.MeanKl:F3} | {r.After.MeanKl:F3} | target {r.TargetKl:F1} |"));
        sb.AppendLine(Inv($"| mean KL during PPO (nats) | | {r.MeanPpoKl:F3} | target {r.TargetKl:F1} |"));
        sb.AppendLine(Inv($"| mean response length (tokens) | {r.Before.MeanResponseLength:F1} | {r.After.MeanResponseLength:F1} | |"));
        return sb.ToString();
    }

    public static void Write(
        string dir, DemoResult r, DemoOptions o, string cacheDirectory, IReadOnlyList<float> pretrainLosses, IReadOnlyList<PpoMetrics> metrics,
        AgreementReport agreement, double[] beforeTox, double[] afterTox)
    {
        string plots = Path.Combine(dir, "plots");
        var it = new double[metrics.Count];
        for (int i = 0; i < it.Length; i++) it[i] = metrics[i].Iteration;
        double[] Of(Func<PpoMetrics, double> f)
        {
            var y = new double[metrics.Count];
            for (int i = 0; i < y.Length; i++) y[i] = f(metrics[i]);
            return y;
        }

        Plots.Lines(Path.Combine(plots, "reward.png"), "PPO: reward-model score per iteration", "iteration", "mean score",
            [new PlotSeries("mean score", it, Of(m => m.MeanScore))]);
        Plots.Lines(Path.Combine(plots, "kl.png"), "PPO: KL to the reference and β", "iteration", "mean KL (nats)",
            [new PlotSeries("mean KL", it, Of(m => m.MeanKl)), new PlotSeries("β (right axis)", it, Of(m => m.KlCoef), RightAxis: true)],
            o.TargetKl, "KL target", "β");
        Plots.Lines(Path.Combine(plots, "entropy.png"), "PPO: policy entropy", "iteration", "mean entropy (nats/token)",
            [new PlotSeries("entropy", it, Of(m => m.Entropy))]);
        Plots.Lines(Path.Combine(plots, "clip-fraction.png"), "PPO: clipped ratio fraction", "iteration", "clip fraction",
            [new PlotSeries("clip fraction", it, Of(m => m.ClipFraction))]);
        Plots.Histograms(Path.Combine(plots, "toxicity.png"), "Toxicity of sampled replies, before vs after PPO", "P(toxic) from the evaluator",
            "before", beforeTox, "after", afterTox);
        var names = new List<string>();
        var taus = new List<double>();
        foreach (var l in agreement.Labelers)
        {
            names.Add(l.Labeler);
            taus.Add(l.MeanTauB);
        }

        Plots.Bars(Path.Combine(plots, "agreement.png"), "Labeler agreement (mean Kendall tau-b vs the others)", "mean tau-b", names, taus, agreement.FlagBelow);
        var steps = new double[pretrainLosses.Count];
        var loss = new double[pretrainLosses.Count];
        for (int i = 0; i < steps.Length; i++)
        {
            steps[i] = i + 1;
            loss[i] = pretrainLosses[i];
        }

        Plots.Lines(Path.Combine(plots, "pretrain-loss.png"), pretrainLosses.Count == 0 ? "Pretraining (cached model: no losses this run)" : "Pretraining loss",
            "step", "cross-entropy (nats/byte)", [new PlotSeries("loss", steps, loss)]);

        var sb = new StringBuilder();
        sb.AppendLine("# rlhf demo report");
        sb.AppendLine();
        sb.AppendLine(Inv($"Seed {o.Seed}. Everything below was generated offline by the project's own code; `config.json` holds the effective settings."));
        sb.AppendLine();
        sb.AppendLine("## Result");
        sb.AppendLine();
        sb.Append(SummaryTable(r));
        sb.AppendLine();
        sb.AppendLine(Inv($"Toxicity is the mean probability of the toxic class given by the independent evaluator (a classifier trained on {o.ClassifierSentences} separately generated sentences, held-out accuracy {r.ClassifierAccuracy:P1}) over {r.After.Count} sampled replies (`samples.jsonl`, `eval.md`)."));
        sb.AppendLine();
        sb.AppendLine("![toxicity before vs after](plots/toxicity.png)");
        sb.AppendLine();
        sb.AppendLine("## Stages");
        sb.AppendLine();
        sb.AppendLine(Inv($"1. **Corpus**: {o.CorpusSize} synthetic customer exchanges, about half of the replies rude."));
        sb.AppendLine(Inv($"2. **Pretraining**: GPT-2 d={o.ModelDim}, {o.Layers} layers, {o.Heads} heads, context {o.ContextLength}, byte tokenizer, {o.PretrainSteps} steps × {o.PretrainBatch} rows; {(r.PretrainCached ? "loaded from the cache" : Inv($"final loss {r.FinalPretrainLoss:F3}"))} (`{cacheDirectory}`)."));
        sb.AppendLine(Inv($"3. **Feedback**: {r.Completions} completions ({o.CompletionsPerPrompt} per prompt, `completions.jsonl`), {r.Rankings} rankings by three simulated labelers (`rankings.jsonl`); `{SimulatedLabelers.NoisyLabeler}` answers at random {o.NoisyLabelerRate:P0} of the time. Flagged: {(r.FlaggedLabelers.Count == 0 ? "none" : string.Join(", ", r.FlaggedLabelers))}."));
        sb.AppendLine();
        sb.Append(agreement.ToTable());
        sb.AppendLine();
        sb.AppendLine("![agreement per labeler](plots/agreement.png)");
        sb.AppendLine();
        sb.AppendLine(Inv($"4. **Reward model**: {r.Pairs} preference pairs from the labelers not flagged (`pairs.jsonl`), {(o.RewardModel == "engine" ? "the pretrained trunk with a scalar head (`reward-model/`)" : "a linear model over hashed words")}, Bradley–Terry loss for {o.RewardEpochs} epoch(s), pair accuracy {r.RewardModelAccuracy:P1}."));
        sb.AppendLine(Inv($"5. **PPO**: LoRA rank {o.LoraRank}, {r.PpoIterations} iterations × {o.PpoBatch} rollouts, lr {o.PpoLearningRate}, adaptive KL penalty (β₀ {o.InitialKlCoef}, target {o.TargetKl}); metrics per iteration in `ppo/metrics.jsonl`, adapter in `ppo/final/`."));
        sb.AppendLine();
        sb.AppendLine("![reward](plots/reward.png)");
        sb.AppendLine("![KL and beta](plots/kl.png)");
        sb.AppendLine("![entropy](plots/entropy.png)");
        sb.AppendLine("![clip fraction](plots/clip-fraction.png)");
        sb.AppendLine("![pretraining loss](plots/pretrain-loss.png)");
        sb.AppendLine();
        sb.AppendLine("## Time per stage");
        sb.AppendLine();
        sb.AppendLine("| stage | seconds |");
        sb.AppendLine("| --- | ---: |");
        foreach (var s in r.StageSeconds) sb.AppendLine(Inv($"| {s.Key} | {s.Value:F1} |"));
        AtomicFile.WriteAllText(Path.Combine(dir, "report.md"), sb.ToString());
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
