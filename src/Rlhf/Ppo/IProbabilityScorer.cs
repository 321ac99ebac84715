namespace Rlhf.Ppo;

/// <summary>The probability of an unwanted class (toxic, rude, ...) for each text, in [0, 1]: what <c>rlhf eval</c> averages.</summary>
public interface IProbabilityScorer
{
    /// <summary>Writes P(unwanted | text) for each text into <paramref name="probabilities"/> (length = texts.Count).</summary>
    void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities);
}
