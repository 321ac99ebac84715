namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>Seeded random inputs for the vocabulary tests.</summary>
internal static class VocabularyTestData
{
    public static float[] Logits(int rows, int vocabularySize, int seed, double scale = 3.0, double bannedFraction = 0)
    {
        var random = new Random(seed);
        var logits = new float[rows * vocabularySize];
        for (int i = 0; i < logits.Length; i++)
        {
            logits[i] = random.NextDouble() < bannedFraction
                ? float.NegativeInfinity
                : (float)(scale * (random.NextDouble() * 2 - 1) + (random.NextDouble() < 0.01 ? 4 * scale : 0));
        }

        return logits;
    }

    /// <summary>Token ids, each pointing at a logit that is not −∞ (a sampler never draws a banned token).</summary>
    public static int[] Tokens(float[] logits, int vocabularySize, int seed)
    {
        var random = new Random(seed);
        int rows = logits.Length / vocabularySize;
        var tokens = new int[rows];
        for (int i = 0; i < rows; i++)
        {
            int t;
            do t = random.Next(vocabularySize);
            while (logits[i * vocabularySize + t] == float.NegativeInfinity);
            tokens[i] = t;
        }

        return tokens;
    }

    /// <summary>Makes sure every row keeps at least one finite logit.</summary>
    public static void KeepOneFinitePerRow(float[] logits, int vocabularySize)
    {
        for (int i = 0; i < logits.Length / vocabularySize; i++)
        {
            if (float.IsNegativeInfinity(logits[i * vocabularySize])) logits[i * vocabularySize] = 0.5f;
        }
    }

    public static void AssertClose(double expected, double actual, double relative, double absolute, string what)
    {
        if (double.IsInfinity(expected) || double.IsNaN(expected))
        {
            Assert.That(actual, Is.EqualTo(expected), what);
            return;
        }

        double tolerance = absolute + relative * Math.Abs(expected);
        Assert.That(actual, Is.EqualTo(expected).Within(tolerance), what);
    }
}
