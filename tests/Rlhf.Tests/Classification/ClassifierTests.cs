using Rlhf.Classification;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tests.Model;
using Rlhf.Tests.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Classification;

public class ClassifierTests
{
    [Test]
    public void CrossEntropyGradient_MatchesFiniteDifferences_AndScalarReference()
    {
        int rows = 4, classes = 3;
        var z = ModelTestUtil.RandomFloats(rows * classes, 1, 2f);
        z[0] = 80f; // large logit: the shifted logsumexp must not overflow
        int[] y = [0, 2, 1, 1];
        var dz = new float[z.Length];
        var (loss, acc) = ClassificationLoss.Compute(z, y, classes, dz);
        double expected = 0;
        int correct = 0;
        for (int i = 0; i < rows; i++)
        {
            double m = z.Skip(i * classes).Take(classes).Max();
            double lse = m + Math.Log(z.Skip(i * classes).Take(classes).Sum(v => Math.Exp(v - m)));
            expected += (lse - z[i * classes + y[i]]) / rows;
            int arg = Enumerable.Range(0, classes).OrderByDescending(c => z[i * classes + c]).ThenBy(c => c).First();
            if (arg == y[i]) correct++;
        }

        Assert.That(loss, Is.EqualTo(expected).Within(1e-9 * Math.Max(1, expected)));
        Assert.That(acc, Is.EqualTo(correct / (double)rows));
        FiniteDifference.Check(z, dz, () => ClassificationLoss.Compute(z, y, classes, new float[z.Length]).Loss, "dlogits", h: 1e-2, tol: 2e-3);
    }

    [Test]
    public void CrossEntropy_BadTarget_NamesIndexAndValue()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ClassificationLoss.Compute(new float[4], [0, 5], 2, new float[4]));
        Assert.That(e!.Message, Does.Contain("targets[1] = 5"));
    }

    [Test]
    public void Softmax_RowsSumToOne_LargeLogitsStayFinite()
    {
        float[] z = [1000f, 999f, 0f, 1f];
        var p = new float[4];
        ClassificationLoss.Softmax(z, 2, p);
        Assert.That(p[0], Is.EqualTo(1 / (1 + Math.Exp(-1))).Within(1e-6));
        Assert.That(p[0] + p[1], Is.EqualTo(1f).Within(1e-6));
        Assert.That(p[3], Is.EqualTo(1 / (1 + Math.Exp(-1))).Within(1e-6));
    }

    private static ClassifierTrainer NewTrainer(ClassifierOptions options) =>
        new(RewardTrainer.NewTrunk(PoliteData.TinyTrunk(), 4), new ByteTokenizer(), "byte", ["polite", "rude"], options);

    private static readonly ClassifierOptions Easy = new() { LearningRate = 3e-3f, Epochs = 3, BatchSize = 8, MaxLength = 48, EvalFraction = 0.2, Seed = 9 };

    [Test]
    public void EasyTask_Learns_AndSavedClassifierAgreesWithTheTrainer()
    {
        var trainer = NewTrainer(Easy);
        var data = PoliteData.Labelled(80, 2);
        var result = trainer.Train(data);
        Assert.That(result.Epochs[^1].TrainLoss, Is.LessThan(result.Epochs[0].TrainLoss));
        Assert.That(result.Epochs[^1].HeldOutAccuracy, Is.EqualTo(1.0));
        string dir = Directory.CreateTempSubdirectory("rlhf-clf-").FullName;
        try
        {
            trainer.Save(dir);
            var clf = SequenceClassifier.Load(dir);
            Assert.That(clf.Labels, Is.EqualTo(new[] { "polite", "rude" }));
            var z = clf.Logits("Shut up, idiot.");
            Assert.That(z[1], Is.GreaterThan(z[0]));
            Assert.That(clf.RewardOf("Shut up, idiot.", "polite"), Is.EqualTo(z[0]));
            Assert.That(clf.RewardOf("Shut up, idiot.", 1), Is.EqualTo(z[1]));
            double p0 = clf.ProbabilityOf("Shut up, idiot.", "polite"), p1 = clf.ProbabilityOf("Shut up, idiot.", 1);
            Assert.That(p0 + p1, Is.EqualTo(1).Within(1e-6));
            Assert.That(p1, Is.EqualTo(1 / (1 + Math.Exp(z[0] - z[1]))).Within(1e-5));
            var rewards = new float[2];
            clf.AsReward(clf.ClassIndex("polite")).Score(["q", "q"], ["Thank you, please.", "Shut up, idiot."], rewards);
            Assert.That(rewards[1], Is.EqualTo(z[0]));
            Assert.That(rewards[0], Is.GreaterThan(rewards[1]));
            Assert.That(Assert.Throws<ArgumentException>(() => clf.ClassIndex("nice"))!.Message, Does.Contain("'nice'"));
            Assert.Throws<Rlhf.IO.InvalidInputException>(() => RewardModel.Load(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void SameSeed_SameBits()
    {
        var data = PoliteData.Labelled(24, 3);
        var a = NewTrainer(Easy with { Epochs = 1 });
        var b = NewTrainer(Easy with { Epochs = 1 });
        a.Train(data);
        b.Train(data);
        Assert.That(b.Model.Parameters, Is.EqualTo(a.Model.Parameters));
        Assert.That(b.Head.Parameters, Is.EqualTo(a.Head.Parameters));
    }

    [Test]
    public void UnknownLabel_AndDuplicateLabels_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => new ClassifierTrainer(RewardTrainer.NewTrunk(PoliteData.TinyTrunk(), 4), new ByteTokenizer(), "byte", ["a", "a"], Easy));
        var e = Assert.Throws<ArgumentException>(() => NewTrainer(Easy).Train([new("x", "polite"), new("y", "meh")]));
        Assert.That(e!.Message, Does.Contain("example 1").And.Contain("'meh'"));
    }
}
