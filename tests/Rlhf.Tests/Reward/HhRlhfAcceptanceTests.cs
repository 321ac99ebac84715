using Rlhf.Checkpoints;
using Rlhf.Feedback;
using Rlhf.IO;
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
        // Full fine-tuning of the pretrained stories260K (Llama, d=64, 5 layers, 512-token vocabulary); each row is BOS +
        // the last 46 tokens of prompt + answer + EOS. (A fresh 2-layer byte-level GPT-2 reached only 0.524 in a trial.)
        var options = new RewardModelOptions { LearningRate = 1e-3f, Epochs = 2, BatchSize = 16, MaxLength = 48, EvalFraction = 0.1, Seed = 42 };
        string tokenizerPath = SharedData.Path("tinyllamas-stories260K/tok512.bin");
        var trunk = ModelCheckpoint.Load(SharedData.Path("tinyllamas-stories260K/stories260K.bin"));
        var trainer = new RewardTrainer(trunk, TokenizerLoader.Load(tokenizerPath), tokenizerPath, options);
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
