using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

public class PpoTaskTests
{
    private static PpoOptions TaskOptions(float beta) => new()
    {
        BatchSize = 16, MiniBatchSize = 8, PpoEpochs = 2, MaxNewTokens = 8, LearningRate = 3e-3f, LoraRank = 8, LoraAlpha = 16f,
        LoraTargets = ["c_attn", "c_proj", "c_fc"], InitialKlCoef = beta, AdaptiveKl = false, TargetKl = 3f, EntropyCoef = 0f,
        MaxSteps = 25, Seed = 11,
    };

    private static (List<PpoMetrics> Metrics, double Kl, double Distinct, double Score) RunTask(float beta)
    {
        var model = PpoTestSupport.TinyByteModel();
        var tok = new ByteTokenizer();
        var trainer = new PpoTrainer(model, tok, new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, TaskOptions(beta));
        var metrics = new List<PpoMetrics>();
        for (int i = 0; i < trainer.Options.MaxSteps; i++) metrics.Add(trainer.Step());
        // Final evaluation batch: fresh samples after training.
        var rollout = trainer.Generate();
        trainer.ComputeLogProbsAndValues(rollout);
        trainer.ScoreResponses(rollout);
        double kl = trainer.ComputeAdvantages(rollout);
        double score = 0;
        foreach (var s in rollout.RawScores) score += s;
        return (metrics, kl, PpoTestSupport.DistinctNGrams(rollout.Responses, 2), score / rollout.Batch);
    }

    [Test]
    public void PpoRaisesRewardWithinKlAndBetaZeroHacks()
    {
        var kept = RunTask(beta: 0.5f);
        var free = RunTask(beta: 0f);
        double start = (kept.Metrics[0].MeanScore + kept.Metrics[1].MeanScore) / 2;
        TestContext.Out.WriteLine($"start {start:F3}; beta 0.5: score {kept.Score:F3} kl {kept.Kl:F3} distinct {kept.Distinct:F3}; beta 0: score {free.Score:F3} kl {free.Kl:F3} distinct {free.Distinct:F3}");
        foreach (var m in kept.Metrics) TestContext.Out.WriteLine($"{m.Iteration} score {m.MeanScore:F3} kl {m.MeanKl:F3} ent {m.Entropy:F3} clip {m.ClipFraction:F3} ev {m.ExplainedVariance:F3}");
        Assert.That(kept.Score, Is.GreaterThan(start + 1.0), "PPO raises the mean reward clearly");
        Assert.That(kept.Kl, Is.LessThan(TaskOptions(0.5f).TargetKl), "KL stays below the target");
        Assert.That(free.Kl, Is.GreaterThan(2 * kept.Kl), "without the penalty the policy drifts much further");
        Assert.That(free.Distinct, Is.LessThan(kept.Distinct), "and loses diversity");
    }
}
