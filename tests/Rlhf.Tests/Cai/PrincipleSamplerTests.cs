using Rlhf.Cai;

namespace Rlhf.Tests.Cai;

public class PrincipleSamplerTests
{
    [Test]
    public void SameSeed_SameChoices_DifferentSeed_DifferentChoices()
    {
        int[] Draw(ulong seed) => [.. Enumerable.Range(0, 64).Select(i => PrincipleSampler.Sample(seed, i, i % 3, 8))];
        Assert.That(Draw(7), Is.EqualTo(Draw(7)));
        Assert.That(Draw(7), Is.Not.EqualTo(Draw(8)));
        Assert.That(Draw(7), Is.All.InRange(0, 7));
    }

    [Test]
    public void Sample_CoversEveryPrincipleRoughlyUniformly()
    {
        var counts = new int[8];
        for (int i = 0; i < 8000; i++) counts[PrincipleSampler.Sample(42, i, 0, 8)]++;
        // Binomial(8000, 1/8): sd ≈ 29.6; 5 sd either side of 1000.
        Assert.That(counts, Is.All.InRange(850, 1150));
    }

    [Test]
    public void ChoiceOfAnItem_DoesNotDependOnTheOtherItems()
    {
        var reviserA = new ScriptedModel();
        var reviserB = new ScriptedModel();
        var c = Constitution.Default;
        var three = new[] { new RedTeamPrompt("a", "x"), new RedTeamPrompt("b", "y"), new RedTeamPrompt("c", "z") };
        var a = new CritiqueReviser(reviserA, c).Run(three, new RevisionOptions(Rounds: 3, Seed: 5));
        var b = new CritiqueReviser(reviserB, c).Run(three[..2], new RevisionOptions(Rounds: 3, Seed: 5));
        for (int i = 0; i < 2; i++) Assert.That(b[i].Rounds.Select(r => r.Principle), Is.EqualTo(a[i].Rounds.Select(r => r.Principle)));
        for (int i = 0; i < 3; i++)
        {
            var expected = Enumerable.Range(0, 3).Select(r => c.Principles[PrincipleSampler.Sample(5, i, r, c.Principles.Count)].Name);
            Assert.That(a[i].Rounds.Select(r => r.Principle), Is.EqualTo(expected));
        }
    }

    [Test]
    public void SampleDistinct_IsDistinctDeterministicAndCapped()
    {
        var s = PrincipleSampler.SampleDistinct(3, 4, 1, 7, 5);
        Assert.That(s, Has.Length.EqualTo(5).And.Unique.And.All.InRange(0, 6));
        Assert.That(PrincipleSampler.SampleDistinct(3, 4, 1, 7, 5), Is.EqualTo(s));
        Assert.That(PrincipleSampler.SampleDistinct(3, 4, 1, 7, 50), Is.EquivalentTo(Enumerable.Range(0, 7)));
        Assert.Throws<ArgumentOutOfRangeException>(() => PrincipleSampler.SampleDistinct(3, 4, 1, 0, 1));
    }
}
