using Rlhf.Feedback;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Reward;

[Category("Acceptance")]
public class HhRlhfAcceptanceTests
{
    private const string Separator = "\n\nAssistant:";

    /// <summary>
    /// Each hh-rlhf record is two whole conversations that share everything up to the last assistant turn: the prompt
    /// is that shared prefix, chosen / rejected the two final answers.
    /// </summary>
    internal static List<PreferencePair> ReadHarmless(string path)
    {
        var pairs = new List<PreferencePair>();
        foreach (var line in JsonLines.Read(path))
        {
            string chosen = line.RequireString("chosen"), rejected = line.RequireString("rejected");
            int kc = chosen.LastIndexOf(Separator, StringComparison.Ordinal) + Separator.Length;
            int kr = rejected.LastIndexOf(Separator, StringComparison.Ordinal) + Separator.Length;
            Assert.That(kc, Is.GreaterThanOrEqualTo(Separator.Length), $"line {line.Line}: no assistant turn");
            pairs.Add(new PreferencePair($"{line.Line}", chosen[..kc], "chosen", chosen[kc..], "rejected", rejected[kr..], "hh-rlhf", 0));
        }

        return pairs;
    }

    [Test]
    public void RewardModel_BeatsTheLengthBaseline_OnHeldOutPairs()
    {
        var pairs = ReadHarmless(SharedData.Path("hh-rlhf/harmless-base.test.jsonl"));
        Assert.That(pairs, Has.Count.EqualTo(2312));
        // A small byte-level GPT-2 from scratch; the last 64 bytes (BOS + tail of prompt and answer) of each row.
        var options = new RewardModelOptions { LearningRate = 2e-3f, Epochs = 4, BatchSize = 16, MaxLength = 64, EvalFraction = 0.1, Seed = 42 };
        var trunk = RewardTrainer.NewTrunk(TransformerConfig.Gpt2(ByteTokenizer.Size, 64, modelDim: 64, layerCount: 2, headCount: 4), options.Seed);
        var trainer = new RewardTrainer(trunk, new ByteTokenizer(), "byte", options);
        var result = trainer.Train(pairs, m => TestContext.Out.WriteLine(
            $"epoch {m.Epoch}: train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:F3}, held-out loss {m.HeldOutLoss:F4} acc {m.HeldOutAccuracy:F3} ({m.Seconds:F0} s)"));

        var (_, held) = DataSplit.Split(pairs.Count, options.EvalFraction, options.Seed);
        int shorter = 0, longer = 0;
        foreach (int i in held)
        {
            int c = pairs[i].Chosen.Length, r = pairs[i].Rejected.Length;
            if (c < r) shorter++;
            if (c > r) longer++;
        }

        double baseline = Math.Max(shorter, longer) / (double)held.Length;
        double accuracy = result.Epochs[^1].HeldOutAccuracy;
        TestContext.Out.WriteLine($"held-out pairs {held.Length}: reward model {accuracy:F3}, length baseline {baseline:F3} (shorter wins {shorter / (double)held.Length:F3}, longer wins {longer / (double)held.Length:F3})");
        Assert.That(accuracy, Is.GreaterThan(baseline));
    }
}
