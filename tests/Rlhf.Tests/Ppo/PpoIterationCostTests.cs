using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

/// <summary>How an iteration spends its time, and the update's choice to keep or recompute the response logits.</summary>
public class PpoIterationCostTests
{
    [Test]
    public void TimeInsideTheRewardFunctionIsNotOrchestration()
    {
        var o = new PpoOptions { BatchSize = 4, MiniBatchSize = 2, MaxNewTokens = 3, LoraRank = 4, Seed = 5 };
        var trainer = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new SlowReward(), PpoTestSupport.Prompts, o);
        var m = trainer.Step();
        Assert.That(m.IterationSeconds, Is.GreaterThanOrEqualTo(m.GenerationSeconds + m.ReferenceSeconds + m.ScoringSeconds + m.UpdateSeconds));
        Assert.That(m.ScoringSeconds, Is.GreaterThanOrEqualTo(SlowReward.Seconds));
        Assert.That(m.OrchestrationSeconds, Is.GreaterThan(0));
        Assert.That(m.OrchestrationSeconds, Is.LessThanOrEqualTo(m.IterationSeconds - SlowReward.Seconds));
    }

    private sealed class SlowReward : Rlhf.Reward.IRewardFunction
    {
        public const double Seconds = 0.3;

        public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
        {
            Thread.Sleep(TimeSpan.FromSeconds(Seconds));
            rewards.Fill(1f);
        }
    }

    [Test]
    public void LogitsPerSequenceAndRecomputedGiveTheSameUpdateAsOneProductPerMinibatch()
    {
        var o = new PpoOptions
        {
            BatchSize = 6, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 5, LearningRate = 1e-2f, LoraRank = 4, Seed = 3, MaxGradNorm = 1f,
        };
        using var kept = NewTrainer(o);
        using var recomputed = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o)
        {
            KeptLogitsLimit = 0,
        };
        var a = kept.Step();
        var b = recomputed.Step();
        // Same rollout (the policies are equal until the update); the two paths differ only in summation order.
        Assert.That(b.MeanScore, Is.EqualTo(a.MeanScore));
        Assert.That(b.PolicyLoss, Is.EqualTo(a.PolicyLoss).Within(1e-3).Percent);
        Assert.That(b.ValueLoss, Is.EqualTo(a.ValueLoss).Within(1e-3).Percent);
        var pa = kept.TrainableParameters.ToArray();
        var pb = recomputed.TrainableParameters.ToArray();
        var p0 = NewTrainer(o).TrainableParameters.ToArray();
        for (int i = 0; i < pa.Length; i++)
        {
            Assert.That(pb[i], Is.EqualTo(pa[i]).Within(1e-5 + 1e-3 * Math.Abs(pa[i] - p0[i])), $"parameter {i}");
        }
    }

    private static PpoTrainer NewTrainer(PpoOptions o) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
}
