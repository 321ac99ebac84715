namespace Rlhf.Demo;

/// <summary>
/// Hashed bag of words and word bigrams (FNV-1a into <see cref="Dimension"/> buckets, lower-cased letters only):
/// the input of the demo's linear reward model and toxicity classifier. Each present feature counts once.
/// </summary>
public static class WordFeatures
{
    public const int Dimension = 4096;

    /// <summary>The distinct bucket indices of <paramref name="text"/>'s words and bigrams, ascending.</summary>
    public static int[] Extract(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && !char.IsAsciiLetter(text[i])) i++;
            int start = i;
            while (i < text.Length && char.IsAsciiLetter(text[i])) i++;
            if (i > start) words.Add(text[start..i].ToLowerInvariant());
        }

        var set = new SortedSet<int>();
        for (int w = 0; w < words.Count; w++)
        {
            set.Add(Bucket(words[w]));
            if (w + 1 < words.Count) set.Add(Bucket(words[w] + " " + words[w + 1]));
        }

        return [.. set];
    }

    private static int Bucket(string s)
    {
        uint h = 2166136261;
        foreach (char c in s)
        {
            h ^= c;
            h *= 16777619;
        }

        return (int)(h % Dimension);
    }

    /// <summary>w · x + b for the sparse binary features <paramref name="features"/>.</summary>
    public static double Dot(ReadOnlySpan<float> weights, float bias, int[] features)
    {
        double s = bias;
        foreach (int f in features) s += weights[f];
        return s;
    }
}
