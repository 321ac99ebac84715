namespace Rlhf.Kernels.Vocabulary;

/// <summary>Argument checks shared by the vocabulary kernels; messages name the argument, the index and the value.</summary>
internal static class VocabularyChecks
{
    public static int Rows(int logitsLength, int vocabularySize, int rows, string logitsName)
    {
        if (vocabularySize <= 0)
            throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, "vocabularySize must be positive.");
        if ((long)rows * vocabularySize != logitsLength)
            throw new ArgumentException(
                $"{logitsName} has {logitsLength} elements, expected rows ({rows}) × vocabularySize ({vocabularySize}) = {(long)rows * vocabularySize}.",
                logitsName);
        return rows;
    }

    public static void Length(int length, int expected, string name)
    {
        if (length != expected)
            throw new ArgumentException($"{name} has {length} elements, expected {expected} (one per row).", name);
    }

    public static float InverseTemperature(float temperature)
    {
        if (!(temperature > 0f) || !float.IsFinite(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"temperature = {temperature} must be positive and finite.");
        float inverse = 1f / temperature;
        // Below ~2.9e−39 (subnormal) 1/T overflows to +∞ and every scaled logit would be ±∞ or NaN.
        if (!float.IsFinite(inverse))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"temperature = {temperature} is too small: 1/temperature overflows a float.");
        return inverse;
    }

    public static void Tokens(ReadOnlySpan<int> tokens, int vocabularySize)
    {
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocabularySize)
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"tokens[{i}] = {tokens[i]} is outside [0, {vocabularySize}).");
        }
    }

    /// <summary>
    /// Finds why a row flagged during the fast pass is invalid: the first NaN or +∞ (returns its index), or a row
    /// that is −∞ everywhere (returns −1). Returns −2 when the row is valid (the fast pass flags conservatively).
    /// </summary>
    public static int FindInvalid(ReadOnlySpan<float> row)
    {
        bool anyFinite = false;
        for (int j = 0; j < row.Length; j++)
        {
            float x = row[j];
            if (float.IsNaN(x) || float.IsPositiveInfinity(x)) return j;
            anyFinite |= x != float.NegativeInfinity;
        }

        return anyFinite ? -2 : -1;
    }

    /// <summary>Throws for an invalid row of <paramref name="name"/>; returns false when the row is valid after all.</summary>
    public static bool ThrowIfInvalidRow(ReadOnlySpan<float> logits, int vocabularySize, int row, string name)
    {
        var values = logits.Slice(row * vocabularySize, vocabularySize);
        int index = FindInvalid(values);
        if (index == -2) return false;
        if (index == -1)
            throw new ArgumentException($"{name} row {row} is -Infinity at every index: no token has probability > 0.", name);
        throw new ArgumentException($"{name}[{row}, {index}] = {values[index]}: logits must not be NaN or +Infinity.", name);
    }
}
