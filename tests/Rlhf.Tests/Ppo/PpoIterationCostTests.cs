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
    public void RecomputingTheLogitsInTheBackwardGivesTheSameUpdate()
    {
        var o = new PpoOptions
        {
            BatchSize = 6, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 5, LearningRate = 1e-2f, LoraRank = 4, Seed = 3, MaxGradNorm = 1f,
        };
        using var kept = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
        using var recomputed = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o)
        {
            KeptLogitsLimit = 0,
        };
        for (int i = 0; i < 2; i++)
        {
            var a = kept.Step();
            var b = recomputed.Step();
            Assert.That(b.PolicyLoss, Is.EqualTo(a.PolicyLoss), $"iteration {i}");
        }

        Assert.That(recomputed.TrainableParameters.ToArray(), Is.EqualTo(kept.TrainableParameters.ToArray()));
    }
}
