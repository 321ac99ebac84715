namespace Rlhf.Tokenizers;

/// <summary>Text ↔ token ids. Encode adds no BOS/EOS; callers prepend <see cref="BosId"/> where the model expects it.</summary>
public interface ITokenizer
{
    /// <summary>Number of ids: every id in [0, VocabSize) decodes.</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, or null when the vocabulary has none.</summary>
    int? BosId { get; }

    /// <summary>End-of-sequence id, or null when the vocabulary has none.</summary>
    int? EosId { get; }

    /// <summary>Token ids of <paramref name="text"/>, without BOS or EOS.</summary>
    int[] Encode(string text);

    /// <summary>The text of <paramref name="ids"/>; special tokens (BOS, EOS, PAD) produce no text.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or ≥ VocabSize (the message names the id, its index and the vocab size).</exception>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The vocabulary entry of <paramref name="id"/> as text (for display and debugging).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is negative or ≥ VocabSize.</exception>
    string TokenToString(int id);
}

/// <summary>Shared argument checks for tokenizers.</summary>
internal static class TokenIds
{
    internal static void Check(ReadOnlySpan<int> ids, int vocabSize, string paramName)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)vocabSize)
            {
                throw new ArgumentOutOfRangeException(paramName, ids[i], $"token id {ids[i]} at index {i} is outside the vocabulary of size {vocabSize}");
            }
        }
    }

    internal static void Check(int id, int vocabSize, string paramName)
    {
        if ((uint)id >= (uint)vocabSize)
        {
            throw new ArgumentOutOfRangeException(paramName, id, $"token id {id} is outside the vocabulary of size {vocabSize}");
        }
    }
}
