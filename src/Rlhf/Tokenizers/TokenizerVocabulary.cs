namespace Rlhf.Tokenizers;

/// <summary>The message for a tokenizer whose vocabulary does not fit the model's.</summary>
public static class TokenizerVocabulary
{
    /// <summary>
    /// "the tokenizer has N ids but the model's vocabulary has M". A llama2.c file counted to its end is named, and when it
    /// is the smaller one the message says it may be truncated: tok*.bin has no token count, so a file cut on a token
    /// boundary reads as a valid, smaller vocabulary and only this comparison can notice.
    /// </summary>
    public static string Mismatch(ITokenizer tokenizer, int modelVocabSize)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        string what = tokenizer is Llama2cTokenizer { CountedToEndOfFile: true } l
            ? $"the tokenizer {l.Source} has {l.VocabSize} tokens" + (l.VocabSize < modelVocabSize
                ? " (read to the end of the file; tok*.bin has no token count, so the file may be truncated)"
                : "")
            : $"the tokenizer has {tokenizer.VocabSize} ids";
        return $"{what} but the model's vocabulary has {modelVocabSize}";
    }
}
