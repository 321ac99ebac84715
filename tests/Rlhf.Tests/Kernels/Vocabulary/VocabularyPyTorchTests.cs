using Rlhf.Kernels.Vocabulary;
using Rlhf.Tests.Support;

namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>The CPU kernels against PyTorch (tests/reference/kernels_vocabulary.py, float64 on the float32 inputs).</summary>
public class VocabularyPyTorchTests
{
    private const double Relative = 1e-5;
    private const double Absolute = 1e-6;

    private static void Close(FixtureTensor expected, float[] actual, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Data.Length), what);
        for (int i = 0; i < actual.Length; i++)
            VocabularyTestData.AssertClose(expected.Data[i], actual[i], Relative, Absolute, $"{what}[{i}]");
    }

    [TestCase("vocabulary_small")]
    [TestCase("vocabulary_wide")]
    public void MatchesPyTorch(string name)
    {
        var f = Fixture.Load(name);
        var policy = f["policy"].AsFloats();
        var reference = f["reference"].AsFloats();
        var tokens = f["tokens"].AsInts();
        float temperature = (float)f["temperature"].Scalar;
        int rows = tokens.Length, v = f["policy"].Shape[1];

        var logp = new float[rows];
        var entropy = new float[rows];
        var lse = new float[rows];
        TokenStatistics.Compute(policy, tokens, v, temperature, logp, entropy, lse);
        Close(f["logp"], logp, "logp");
        Close(f["entropy"], entropy, "entropy");
        Close(f["lse"], lse, "lse");

        var kl = new float[rows];
        KullbackLeibler.FullVocabulary(policy, reference, v, temperature, kl);
        Close(f["kl"], kl, "kl");

        var logp32 = f["logp32"].AsFloats();
        var logq32 = f["logq32"].AsFloats();
        var k = new float[rows];
        KullbackLeibler.K1(logp32, logq32, k);
        Close(f["k1"], k, "k1");
        KullbackLeibler.K2(logp32, logq32, k);
        Close(f["k2"], k, "k2");
        KullbackLeibler.K3(logp32, logq32, k);
        Close(f["k3"], k, "k3");

        var grad = (float[])policy.Clone();
        TokenStatistics.Backward(grad, tokens, v, temperature, lse, entropy, f["grad_logp"].AsFloats(), f["grad_entropy"].AsFloats());
        Close(f["dlogits"], grad, "dlogits");
    }
}
