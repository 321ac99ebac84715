using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

public class PpoTrainerTests
{
    private static PpoOptions Small(int steps = 4) => new()
    {
        BatchSize = 6, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 5, LearningRate = 1e-2f, LoraRank = 4,
        InitialKlCoef = 0.1f, TargetKl = 0.5f, KlHorizon = 50f, MaxSteps = steps, Seed = 3, ScoreScaling = true, ScoreNormalization = true,
        MissingEosPenalty = 0.5f, MaxGradNorm = 1f, CheckpointEvery = 2,
    };

    private static PpoTrainer NewTrainer(PpoOptions o) =>
        new(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);

    [TestCase(0)]
    [TestCase(4)]
    public void ResumedRunEqualsUninterruptedBitForBit(int loraRank)
    {
        var o = Small() with { LoraRank = loraRank };
        using var dirA = new TempDir();
        using var dirB = new TempDir();
        var full = NewTrainer(o);
        var fullMetrics = PpoRun.Run(full, dirA.Path);
        // Interrupted: stop after 2 iterations (the checkpoint), then a fresh process-like trainer resumes.
        var first = NewTrainer(o with { MaxSteps = 2 });
        PpoRun.Run(first, dirB.Path);
        var resumed = NewTrainer(o);
        var rest = PpoRun.Run(resumed, dirB.Path, resume: true);
        Assert.That(rest, Has.Count.EqualTo(2));
        Assert.That(resumed.Iteration, Is.EqualTo(full.Iteration));
        Assert.That(resumed.TrainableParameters.SequenceEqual(full.TrainableParameters), "trained weights equal bit for bit");
        Assert.That(resumed.ValueHead.Parameters.AsSpan().SequenceEqual(full.ValueHead.Parameters), "value head equal bit for bit");
        Assert.That(resumed.Kl.Value, Is.EqualTo(full.Kl.Value));
        Assert.That(full.Kl.Value, Is.Not.EqualTo(o.InitialKlCoef), "the adaptive controller moved (so resuming it is tested)");
        Assert.That(rest[1].MeanScore, Is.EqualTo(fullMetrics[3].MeanScore));
        Assert.That(rest[1].PolicyLoss, Is.EqualTo(fullMetrics[3].PolicyLoss));
        Assert.That(File.ReadAllLines(Path.Combine(dirB.Path, PpoRun.MetricsFileName)), Has.Length.EqualTo(4));
        Assert.That(File.Exists(Path.Combine(dirA.Path, PpoRun.ConfigFileName)));
        Assert.That(Directory.Exists(Path.Combine(dirA.Path, "final")));
        Assert.That(full.TrainableParameters.SequenceEqual(NewTrainer(o).TrainableParameters), Is.False, "training changed the weights");
    }

    [Test]
    public void SameSeedSameRunDifferentSeedDifferentRun()
    {
        var a = NewTrainer(Small(2));
        var b = NewTrainer(Small(2));
        var c = NewTrainer(Small(2) with { Seed = 4 });
        for (int i = 0; i < 2; i++)
        {
            a.Step();
            b.Step();
            c.Step();
        }

        Assert.That(a.TrainableParameters.SequenceEqual(b.TrainableParameters));
        Assert.That(a.TrainableParameters.SequenceEqual(c.TrainableParameters), Is.False);
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        yield return new TestCaseData(Small() with { ValueCoef = -1f }, "ValueCoef");
        yield return new TestCaseData(Small() with { EntropyCoef = -0.1f }, "EntropyCoef");
        yield return new TestCaseData(Small() with { InitialKlCoef = -0.2f }, "InitialKlCoef");
        yield return new TestCaseData(Small() with { ClipRange = float.NaN }, "ClipRange");
        yield return new TestCaseData(Small() with { MiniBatchSize = 7 }, "MiniBatchSize 7 exceeds BatchSize 6");
        yield return new TestCaseData(Small() with { Gamma = 1.5f }, "Gamma");
        yield return new TestCaseData(Small() with { Temperature = 0f }, "Temperature");
        yield return new TestCaseData(Small() with { MaxNewTokens = 15 }, "context length");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void BadOptionsFailBeforeWork(PpoOptions o, string expected)
    {
        var model = PpoTestSupport.TinyByteModel();
        var ex = Assert.Throws<InvalidInputException>(() => new PpoTrainer(model, new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o));
        Assert.That(ex!.Message, Does.Contain(expected));
        Assert.That(model.Adapter, Is.Null, "nothing happened before the error");
    }

    [Test]
    public void MissingRewardAndVocabularyMismatchFail()
    {
        var ex = Assert.Throws<InvalidInputException>(() => new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), null, PpoTestSupport.Prompts, Small()));
        Assert.That(ex!.Message, Does.Contain("reward"));
        var other = new TransformerModel(TransformerConfig.Gpt2(300, 16, 32, 1, 2));
        ex = Assert.Throws<InvalidInputException>(() => new PpoTrainer(other, new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, Small()));
        Assert.That(ex!.Message, Does.Contain("259").And.Contain("300"));
    }

    [Test]
    public void AdaptiveKlControllerFollowsTrlFormula()
    {
        var k = new KlController(0.2f, adaptive: true, target: 6f, horizon: 10000f);
        k.Update(9.0, 256); // error clipped to 0.2
        Assert.That(k.Value, Is.EqualTo((float)(0.2f * (1 + 0.2 * 256 / 10000.0))));
        float before = k.Value;
        k.Update(5.4, 100); // error −0.1
        Assert.That(k.Value, Is.EqualTo((float)(before * (1 - 0.1 * 100 / 10000.0))).Within(1e-9));
        var f = new KlController(0.2f, adaptive: false, 6f, 10000f);
        f.Update(100, 256);
        Assert.That(f.Value, Is.EqualTo(0.2f));
    }

    [Test]
    public void RunningMomentsMatchTrl()
    {
        // TRL RunningMoments after [1,2,3] then [4,5]: mean 3, var 2 (population over all 5), std √(var·n/(n−1)).
        var m = new RunningMoments();
        m.Update([1f, 2f, 3f]);
        m.Update([4f, 5f]);
        Assert.That(m.Mean, Is.EqualTo(3.0).Within(1e-9));
        Assert.That(m.Variance, Is.EqualTo(2.0).Within(1e-9));
        Assert.That(m.Std, Is.EqualTo(Math.Sqrt(2.5)).Within(1e-9));
    }

    [Test]
    public void LoraReferenceSharesTheBase()
    {
        // Parameter + optimizer bytes: LoRA (one base + adapter + 2 moments + head) vs full fine-tuning (policy +
        // frozen reference copy + 2 moments + head).
        var cfg = TransformerConfig.Gpt2(vocabSize: 512, contextLength: 64, modelDim: 64, layerCount: 4, headCount: 4);
        var o = Small() with { MaxNewTokens = 4 };
        var lora = new PpoTrainer(new TransformerModel(cfg), new FixedVocab(512), new PpoTestSupport.LowercaseReward(), ["a"], o);
        var full = new PpoTrainer(new TransformerModel(cfg), new FixedVocab(512), new PpoTestSupport.LowercaseReward(), ["a"], o with { LoraRank = 0 });
        Assert.That(lora.Reference, Is.SameAs(lora.Policy));
        Assert.That(full.Reference, Is.Not.SameAs(full.Policy));
        var ml = PpoMemory.Measure(lora);
        var mf = PpoMemory.Measure(full);
        TestContext.Out.WriteLine($"LoRA {ml}; full {mf}");
        long twoCopies = 2L * new TransformerModel(cfg).Parameters.Length * sizeof(float);
        Assert.That(ml.TotalBytes, Is.LessThanOrEqualTo(0.55 * twoCopies));
        Assert.That(mf.TotalBytes, Is.GreaterThanOrEqualTo(2 * twoCopies));
    }

    private sealed class FixedVocab(int size) : ITokenizer
    {
        public int VocabSize => size;

        public int? BosId => null;

        public int? EosId => null;

        public int[] Encode(string text) => [.. text.Select(c => c % size)];

        public string Decode(ReadOnlySpan<int> ids) => new([.. ids.ToArray().Select(i => (char)('a' + i % 26))]);

        public string TokenToString(int id) => ((char)('a' + id % 26)).ToString();
    }
}

public class PpoScoreTests
{
    [Test]
    public void MissingEosPenaltyAndClipApplyToScores()
    {
        var o = new PpoOptions { BatchSize = 4, MiniBatchSize = 2, MaxNewTokens = 3, MissingEosPenalty = 2f, ScoreClip = 1.5f, Seed = 5 };
        var trainer = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
        var rollout = trainer.Generate();
        // Make row 0 end with EOS inside the limit; the other rows hit the limit without EOS.
        rollout.ResponseTokens[0] = ByteTokenizer.Eos;
        rollout.Lengths[0] = 1;
        for (int b = 1; b < 4; b++) rollout.Lengths[b] = 3;
        for (int b = 1; b < 4; b++) rollout.ResponseTokens[b * 3 + 2] = 'x';
        trainer.ScoreResponses(rollout);
        Assert.That(rollout.Scores[0], Is.EqualTo(Math.Clamp(rollout.RawScores[0], -1.5f, 1.5f)));
        for (int b = 1; b < 4; b++) Assert.That(rollout.Scores[b], Is.EqualTo(Math.Clamp(rollout.RawScores[b] - 2f, -1.5f, 1.5f)), $"row {b}");
    }

    /// <summary>The tiny byte policy with the checkpoint's eos_token_id list <paramref name="eos"/> in its config.</summary>
    private static TransformerModel WithEosList(params int[] eos)
    {
        var source = PpoTestSupport.TinyByteModel();
        var m = new TransformerModel(source.Config with { EosTokenIds = TokenIdList.List(eos) });
        source.Parameters.CopyTo(m.Parameters, 0);
        return m;
    }

    [TestCase(RolloutBackend.Engine)]
    [TestCase(RolloutBackend.Ort)]
    public void RolloutsEndAtAnyIdOfThePolicysEosList(RolloutBackend backend)
    {
        // Top-k 1: the tokens do not depend on the draws, so the run with the list is the free run cut short.
        var o = new PpoOptions { BatchSize = 4, MiniBatchSize = 2, MaxNewTokens = 6, TopK = 1, MissingEosPenalty = 2f, Seed = 11, RolloutBackend = backend };
        var tok = new ByteTokenizer();
        using var freeTrainer = new PpoTrainer(PpoTestSupport.TinyByteModel(), tok, new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
        var free = freeTrainer.Generate();
        const int r = 6;
        int[] stops = [free.ResponseTokens[r + 2], free.ResponseTokens[1]]; // row 1's third token, row 0's second
        Assert.That(stops, Has.None.EqualTo(ByteTokenizer.Eos), "the seeded free run must give two non-EOS stop ids");
        using var trainer = new PpoTrainer(WithEosList(stops), tok, new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
        var rollout = trainer.Generate();
        Assert.That(rollout.Lengths[0], Is.LessThanOrEqualTo(2));
        Assert.That(rollout.Lengths[1], Is.LessThanOrEqualTo(3));
        int p = rollout.PromptLength;
        for (int b = 0; b < 4; b++)
        {
            int len = r;
            for (int i = 0; i < free.Lengths[b]; i++)
            {
                int t = free.ResponseTokens[b * r + i];
                if (t == ByteTokenizer.Eos || stops.Contains(t))
                {
                    len = i + 1;
                    break;
                }
            }

            Assert.That(rollout.Lengths[b], Is.EqualTo(len), $"row {b} length");
            for (int i = 0; i < r; i++)
            {
                bool live = i < len;
                Assert.That(rollout.ResponseTokens[b * r + i], Is.EqualTo(live ? free.ResponseTokens[b * r + i] : ByteTokenizer.Eos), $"row {b} token {i}");
                Assert.That(rollout.ResponseMask[b * r + i], Is.EqualTo(live ? 1f : 0f), $"row {b} response mask {i}");
                Assert.That(rollout.Mask[b * rollout.SequenceLength + p + i], Is.EqualTo(live ? 1f : 0f), $"row {b} mask {i}");
            }

            // The response text leaves the listed stop token out, as it leaves out the tokenizer's EOS.
            int last = rollout.ResponseTokens[b * r + len - 1];
            int textLength = stops.Contains(last) ? len - 1 : len;
            Assert.That(rollout.Responses[b], Is.EqualTo(tok.Decode(free.ResponseTokens.AsSpan(b * r, textLength))), $"row {b} text");
        }

        // The score lands on the last valid token (the listed stop token), nothing after it.
        trainer.ComputeLogProbsAndValues(rollout);
        trainer.ScoreResponses(rollout);
        trainer.ComputeAdvantages(rollout);
        for (int b = 0; b < 4; b++)
        {
            int len = rollout.Lengths[b];
            float klAtEnd = -trainer.Kl.Value * rollout.Kl[b * r + len - 1];
            Assert.That(rollout.Rewards[b * r + len - 1], Is.EqualTo(rollout.Scores[b] + klAtEnd).Within(1e-5f), $"row {b} reward at its end");
            for (int i = len; i < r; i++) Assert.That(rollout.Rewards[b * r + i], Is.Zero, $"row {b} reward after its end");
        }
    }

    [Test]
    public void MissingEosPenalty_SparesRowsEndingAtAListedId()
    {
        var o = new PpoOptions { BatchSize = 4, MiniBatchSize = 2, MaxNewTokens = 3, MissingEosPenalty = 2f, Seed = 5 };
        using var trainer = new PpoTrainer(WithEosList(10, 'q'), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
        var rollout = trainer.Generate();
        // Every row runs to the limit: rows 0 and 1 end with a listed id, row 2 with the tokenizer's EOS, row 3 with neither.
        int[] ends = ['q', 10, ByteTokenizer.Eos, 'x'];
        for (int b = 0; b < 4; b++)
        {
            rollout.Lengths[b] = 3;
            rollout.ResponseTokens[b * 3 + 2] = ends[b];
        }

        trainer.ScoreResponses(rollout);
        for (int b = 0; b < 3; b++) Assert.That(rollout.Scores[b], Is.EqualTo(rollout.RawScores[b]), $"row {b}");
        Assert.That(rollout.Scores[3], Is.EqualTo(rollout.RawScores[3] - 2f));
    }

    [Test]
    public void K3EstimatorFeedsTheRewards()
    {
        var o = new PpoOptions { BatchSize = 4, MiniBatchSize = 2, MaxNewTokens = 3, KlEstimator = KlEstimator.K3, InitialKlCoef = 0.3f, LearningRate = 0.05f, Seed = 5 };
        var trainer = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, o);
        trainer.Step(); // moves the adapter so the KL is not zero
        var rollout = trainer.Generate();
        trainer.ComputeLogProbsAndValues(rollout);
        trainer.ScoreResponses(rollout);
        trainer.ComputeAdvantages(rollout);
        bool anyPositive = false;
        for (int i = 0; i < rollout.Kl.Length; i++)
        {
            if (rollout.ResponseMask[i] == 0f) continue;
            double u = rollout.ReferenceLogProbs[i] - rollout.OldLogProbs[i];
            Assert.That(rollout.Kl[i], Is.EqualTo(Math.Exp(u) - 1 - u).Within(1e-6 + 1e-4 * Math.Abs(u)), $"k3 at {i}");
            anyPositive |= rollout.Kl[i] > 0;
        }

        Assert.That(anyPositive);
    }
}
