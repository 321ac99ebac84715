using Rlhf.Cai;
using Rlhf.IO;
using Rlhf.Reward;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Cai;

public class PreferenceTests
{
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [Test]
    public void LogSoftmaxAt_MatchesScalarReference_AndSurvivesLargeLogits()
    {
        float[] z = [1.5f, -2f, 0.25f, 3f, -0.5f];
        double lse = Math.Log(z.Sum(x => Math.Exp(x)));
        for (int i = 0; i < z.Length; i++) Assert.That(OptionPreference.LogSoftmaxAt(z, i), Is.EqualTo(z[i] - lse).Within(1e-12));
        float[] big = [1000f, 999f, -1000f];
        Assert.That(OptionPreference.LogSoftmaxAt(big, 1), Is.EqualTo(-1 - Math.Log(1 + Math.Exp(-1))).Within(1e-9));
        Assert.That(OptionPreference.LogSoftmaxAt([1f, float.NaN], 0), Is.NaN);
        Assert.Throws<ArgumentOutOfRangeException>(() => OptionPreference.LogSoftmaxAt(z, 5));
    }

    [Test]
    public void TwoWay_IsTheNormalisedProbabilityOfA()
    {
        double la = Math.Log(0.3), lb = Math.Log(0.1);
        Assert.That(OptionPreference.TwoWay(la, lb), Is.EqualTo(0.75).Within(1e-12));
        Assert.That(OptionPreference.TwoWay(-800, -801), Is.EqualTo(Sigmoid(1)).Within(1e-12));
        Assert.That(OptionPreference.TwoWay(0, -1000), Is.EqualTo(1).Within(1e-12));
        Assert.That(OptionPreference.TwoWay(double.NegativeInfinity, double.NegativeInfinity), Is.EqualTo(0.5));
    }

    [Test]
    public void Judge_AveragesBothOrdersAndPrinciples_CancellingALabelBias()
    {
        var feedback = new ScriptedModel { LabelABias = 1.3 };
        feedback.Quality["good reply"] = 0.8;
        feedback.Quality["bad reply"] = -0.4;
        var c = Constitution.Default;
        var labeler = new PreferenceLabeler(feedback, c);
        var principles = c.ComparisonPrinciples.Take(3).ToList();
        var j = labeler.Judge("request", "good reply", "bad reply", principles);
        double p1 = Sigmoid(1.3 + 0.8 + 0.4), p2 = Sigmoid(1.3 - 0.4 - 0.8);
        Assert.That(j.Votes, Has.Count.EqualTo(3));
        Assert.That(j.Votes[0].FirstAsA, Is.EqualTo(p1).Within(1e-12));
        Assert.That(j.Votes[0].SecondAsA, Is.EqualTo(p2).Within(1e-12));
        Assert.That(j.FirstBetter, Is.EqualTo(0.5 * (p1 + 1 - p2)).Within(1e-12));
        // Swapping the replies gives exactly the complementary preference: the bias towards "(A)" cancels.
        var swapped = labeler.Judge("request", "bad reply", "good reply", principles);
        Assert.That(swapped.FirstBetter, Is.EqualTo(1 - j.FirstBetter).Within(1e-12));
        // Without the bias the preference is the plain Bradley–Terry probability of the quality gap.
        feedback.LabelABias = 0;
        Assert.That(labeler.Judge("request", "good reply", "bad reply", principles).FirstBetter, Is.EqualTo(Sigmoid(1.2)).Within(1e-12));
    }

    [Test]
    public void Label_WritesChosenFirstWithSoftLabels_AndTheFileTrainsTheSoftLoss_GradientMatchesFiniteDifferences()
    {
        var policy = new ScriptedModel();
        var feedback = new ScriptedModel { LabelABias = 0.7 };
        var prompts = new[] { new RedTeamPrompt("a", "first request"), new RedTeamPrompt("b", "second request") };
        var options = new PreferenceOptions(ResponsesPerPrompt: 3, PrinciplesPerComparison: 2, Seed: 4);
        // The policy's replies are predictable: reply1.{index}.{seed % 1000}; give each a known quality.
        var replies = policy.Generate(Enumerable.Repeat("x", 6).ToList(), new CaiSampling(), PrincipleSampler.StreamSeed(4, -4, 0));
        policy = new ScriptedModel();
        double[] quality = [0.9, -0.3, 0.1, -1.2, 0.4, 0.0];
        for (int i = 0; i < 6; i++) feedback.Quality[replies[i]] = quality[i];

        var pairs = AiPreferences.Label(prompts, policy, new PreferenceLabeler(feedback, Constitution.Default), options);
        Assert.That(pairs, Has.Count.EqualTo(6));
        foreach (var p in pairs)
        {
            double gap = feedback.Quality[p.Chosen] - feedback.Quality[p.Rejected];
            // Each order sees the "(A)" bias once in favour of each reply: ½·(σ(gap + b) + σ(gap − b)).
            Assert.That(p.Preference, Is.EqualTo(0.5 * (Sigmoid(gap + 0.7) + Sigmoid(gap - 0.7))).Within(1e-12), $"{p.ChosenId} vs {p.RejectedId}");
            Assert.That(p.Preference, Is.GreaterThanOrEqualTo(0.5));
            Assert.That(p.Votes, Has.Count.EqualTo(2));
        }

        using var dir = new TempDir();
        AiPreferences.Write(dir.File("pairs.jsonl"), pairs);
        var read = AiPreferences.Read(dir.File("pairs.jsonl"));
        Assert.That(read.Select(p => (p.Chosen, p.Rejected, p.Preference)), Is.EqualTo(pairs.Select(p => (p.Chosen, p.Rejected, p.Preference))));
        var generic = Rlhf.Feedback.PreferencePairs.Read(dir.File("pairs.jsonl"));
        Assert.That(generic.Select(p => p.Labeler), Is.All.EqualTo("cai"));

        // Reward-model scores for the pairs; the soft-label loss from the file's preferences, checked against
        // the scalar formula and central finite differences.
        int n = read.Count;
        var chosen = new float[n];
        var rejected = new float[n];
        var prefs = new float[n];
        for (int i = 0; i < n; i++)
        {
            chosen[i] = 0.3f * i - 0.5f;
            rejected[i] = 0.2f - 0.15f * i;
            prefs[i] = (float)read[i].Preference;
        }

        var gc = new float[n];
        var gr = new float[n];
        var (loss, _) = PairwiseLoss.Compute(chosen, rejected, default, prefs, gc, gr);
        double Reference(float[] c, float[] r)
        {
            double s = 0;
            for (int i = 0; i < n; i++)
            {
                double d = (double)c[i] - r[i];
                s += -(prefs[i] * Math.Log(Sigmoid(d)) + (1 - prefs[i]) * Math.Log(Sigmoid(-d)));
            }

            return s / n;
        }

        Assert.That(loss, Is.EqualTo(Reference(chosen, rejected)).Within(1e-9));
        const float h = 1e-2f;
        for (int i = 0; i < n; i++)
        {
            var cp = (float[])chosen.Clone();
            var cm = (float[])chosen.Clone();
            cp[i] += h;
            cm[i] -= h;
            double fd = (Reference(cp, rejected) - Reference(cm, rejected)) / (cp[i] - cm[i]);
            Assert.That(gc[i], Is.EqualTo(fd).Within(1e-4), $"d loss / d chosen[{i}]");
            Assert.That(gr[i], Is.EqualTo(-fd).Within(1e-4), $"d loss / d rejected[{i}]");
        }
    }

    [Test]
    public void Read_RejectsAPreferenceThatIsNotANumberInZeroOne_NamingTheLine()
    {
        // It used to read a quoted or missing-typed preference as 1 (certain), silently.
        using var dir = new TempDir();
        string path = dir.File("pairs.jsonl");
        File.WriteAllText(path,
            "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"preference\":0.75}\n"
            + "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"preference\":\"0.9\"}\n");
        var e = Assert.Throws<InvalidInputException>(() => AiPreferences.Read(path));
        Assert.That(e!.Message, Does.Contain("pairs.jsonl:2:").And.Contain("\"preference\" must be a number"));
    }
}
