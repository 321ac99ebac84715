using Rlhf.Formats;
using Rlhf.IO;
using Rlhf.Ppo;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;
using KernelAdamW = Rlhf.Kernels.Optim.AdamW;

namespace Rlhf.Tests.Ppo;

/// <summary>TRL's ratio_threshold (<see cref="PpoOptions.RatioThreshold"/>): a minibatch whose mean ratio exceeds it adds no gradient.</summary>
public class PpoRatioThresholdTests
{
    private static PpoOptions Small() => new()
    {
        BatchSize = 6, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 5, LearningRate = 1e-2f, LoraRank = 4,
        InitialKlCoef = 0.1f, TargetKl = 0.5f, KlHorizon = 50f, MaxSteps = 4, Seed = 3, MaxGradNorm = 1f, CheckpointEvery = 2,
    };

    private static PpoTrainer NewTrainer(PpoOptions o) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);

    /// <summary>A scored rollout with advantages whose old log-probs then drop by 20 at every valid token (ratio e²⁰).</summary>
    private static PpoRollout RolloutWithHugeRatios(PpoTrainer trainer, params int[] rows)
    {
        var rollout = trainer.Generate();
        trainer.ComputeLogProbsAndValues(rollout);
        trainer.ScoreResponses(rollout);
        trainer.ComputeAdvantages(rollout);
        int r = rollout.ResponseLength;
        foreach (int row in rows)
        {
            for (int i = row * r; i < (row + 1) * r; i++)
                if (rollout.ResponseMask[i] != 0f) rollout.OldLogProbs[i] -= 20f;
        }

        return rollout;
    }

    [Test]
    public void MinibatchesWithAHugeMeanRatioAreSkippedAndCounted()
    {
        using var trainer = NewTrainer(Small());
        var rollout = RolloutWithHugeRatios(trainer, 0, 1, 2, 3, 4, 5);
        var weights = trainer.TrainableParameters.ToArray();
        var head = trainer.ValueHead.Parameters.ToArray();
        var m = trainer.Update(rollout);
        Assert.That(m.MinibatchSteps, Is.EqualTo(4), "2 epochs of 2 minibatches");
        Assert.That(m.SkippedMinibatches, Is.EqualTo(4));
        Assert.That(m.PolicyLoss, Is.Zero, "TRL zeroes a skipped minibatch's policy loss");
        Assert.That(m.ValueLoss, Is.Zero, "and its value loss");
        Assert.That(m.ApproxKl, Is.GreaterThan(100), "the KL is still measured (≈ ½·20²)");
        Assert.That(trainer.OptimizerSteps, Is.EqualTo(4), "AdamW still stepped, as TRL's optimizer.step() does");
        Assert.That(trainer.TrainableParameters.SequenceEqual(weights), "zero gradients and no earlier momentum: the adapter did not move");
        Assert.That(trainer.ValueHead.Parameters.AsSpan().SequenceEqual(head), "nor the value head");

        // Control: the same rollout without a threshold trains, so the skip above is what kept the weights.
        using var unbounded = NewTrainer(Small() with { RatioThreshold = float.PositiveInfinity });
        var n = unbounded.Update(RolloutWithHugeRatios(unbounded, 0, 1, 2, 3, 4, 5));
        Assert.That(n.SkippedMinibatches, Is.Zero);
        Assert.That(unbounded.TrainableParameters.SequenceEqual(weights), Is.False, "the huge ratios give a gradient when not skipped");
    }

    [Test]
    public void ASkippedMinibatchMovesTheWeightsOnlyByAdamWsMomentumAndDecay()
    {
        var o = Small() with { WeightDecay = 0.05f };
        using var trainer = NewTrainer(o);
        using var dir = new TempDir();
        var rollout = RolloutWithHugeRatios(trainer, 2, 3);
        var first = trainer.TrainMinibatch(rollout, [0, 1]);
        Assert.That(first.SkippedMinibatches, Is.Zero);
        trainer.SaveCheckpoint(dir.Path);
        var second = trainer.TrainMinibatch(rollout, [2, 3]);
        Assert.That(second.SkippedMinibatches, Is.EqualTo(1));
        Assert.That(second.GradNorm, Is.Zero);

        // Expected: AdamW step 2 with zero gradients from the state after step 1 (the checkpoint's weights and moments).
        var t = Safetensors.Read(Path.Combine(dir.Path, PpoTrainer.TensorsFileName));
        var expected = ZeroGradientStep(t, "policy.trainable", "adam.policy", trainer.TrainableParameters.Length, o);
        var expectedHead = ZeroGradientStep(t, "value_head", "adam.head", trainer.ValueHead.Parameters.Length, o);
        Assert.That(trainer.TrainableParameters.SequenceEqual(expected), "the adapter moved exactly as a zero-gradient AdamW step");
        Assert.That(trainer.ValueHead.Parameters.AsSpan().SequenceEqual(expectedHead), "and the value head");
        Assert.That(trainer.TrainableParameters.SequenceEqual(t.Get("policy.trainable", [expected.Length])), Is.False, "momentum and decay still moved it");
    }

    private static float[] ZeroGradientStep(NamedTensors t, string weights, string moments, int length, PpoOptions o)
    {
        var w = t.Get(weights, [length]).ToArray(); // Get hands out the stored array; the test reads it again
        KernelAdamW.Step(w, new float[length], t.Get(moments + ".m", [length]), t.Get(moments + ".v", [length]), 2, o.LearningRate, o.AdamBeta1, o.AdamBeta2,
            o.AdamEpsilon, o.WeightDecay);
        return w;
    }

    [Test]
    public void TheDefaultThresholdSkipsNothingInANormalRunAndChangesNothing()
    {
        Assert.That(new PpoOptions().RatioThreshold, Is.EqualTo(10f), "TRL's default");
        using var withDefault = NewTrainer(Small());
        using var unbounded = NewTrainer(Small() with { RatioThreshold = float.PositiveInfinity });
        for (int i = 0; i < 3; i++)
        {
            var a = withDefault.Step();
            var b = unbounded.Step();
            Assert.That(a.SkippedMinibatches, Is.Zero, $"iteration {i + 1}");
            Assert.That(a.PolicyLoss, Is.EqualTo(b.PolicyLoss), $"iteration {i + 1}");
            Assert.That(a.ValueLoss, Is.EqualTo(b.ValueLoss), $"iteration {i + 1}");
        }

        Assert.That(withDefault.TrainableParameters.SequenceEqual(unbounded.TrainableParameters), "bit for bit");
        Assert.That(withDefault.ValueHead.Parameters.AsSpan().SequenceEqual(unbounded.ValueHead.Parameters));
    }

    [Test]
    public void ResumeStaysBitExactWhenMinibatchesAreSkipped()
    {
        // A threshold just above 1 skips the minibatches whose policy has moved up on average and trains the others.
        var o = Small() with { RatioThreshold = 1.001f, PpoEpochs = 3 };
        using var dirA = new TempDir();
        using var dirB = new TempDir();
        using var full = NewTrainer(o);
        var all = PpoRun.Run(full, dirA.Path);
        int skipped = all.Sum(m => m.SkippedMinibatches), steps = all.Sum(m => m.MinibatchSteps);
        Assert.That(skipped, Is.InRange(1, steps - 1), "some minibatches skipped, some trained");
        using (var first = NewTrainer(o with { MaxSteps = 2 })) PpoRun.Run(first, dirB.Path);
        using var resumed = NewTrainer(o);
        var rest = PpoRun.Run(resumed, dirB.Path, resume: true);
        Assert.That(rest.Select(m => m.SkippedMinibatches), Is.EqualTo(all.Skip(2).Select(m => m.SkippedMinibatches)));
        Assert.That(resumed.TrainableParameters.SequenceEqual(full.TrainableParameters), "trained weights equal bit for bit");
        Assert.That(resumed.ValueHead.Parameters.AsSpan().SequenceEqual(full.ValueHead.Parameters), "value head equal bit for bit");
    }

    [TestCase(0f)]
    [TestCase(-1f)]
    [TestCase(float.NaN)]
    [TestCase(float.NegativeInfinity)]
    public void ABadThresholdFailsBeforeWork(float threshold)
    {
        var ex = Assert.Throws<InvalidInputException>(() => (Small() with { RatioThreshold = threshold }).Validate());
        Assert.That(ex!.Message, Does.Contain("RatioThreshold must be positive"));
    }

    [Test]
    public void InfinityTurnsTheThresholdOff() => Assert.DoesNotThrow(() => (Small() with { RatioThreshold = float.PositiveInfinity }).Validate());
}
