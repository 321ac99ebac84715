namespace Rlhf.Tokenizers;

/// <summary>Tokenizers by name, as the command line and saved models spell them.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// "byte" → <see cref="ByteTokenizer"/>, "gpt2" → <see cref="Gpt2Tokenizer"/>, otherwise a path to a llama2.c
    /// tok*.bin file. Anything else throws an <see cref="ArgumentException"/> naming the value.
    /// </summary>
    public static ITokenizer Load(string spec)
    {
        ArgumentException.ThrowIfNullOrEmpty(spec);
        if (spec == "byte") return new ByteTokenizer();
        if (spec == "gpt2") return new Gpt2Tokenizer();
        if (File.Exists(spec)) return Llama2cTokenizer.Load(spec);
        throw new ArgumentException($"tokenizer '{spec}' is neither \"byte\", \"gpt2\" nor an existing llama2.c tok*.bin file.", nameof(spec));
    }

    /// <summary>The pad id to put under mask 0: the tokenizer's own when it has one, else EOS, else 0 (never read by a loss).</summary>
    public static int PadId(ITokenizer tokenizer) => tokenizer switch
    {
        ByteTokenizer b => b.PadId,
        _ => tokenizer.EosId ?? 0,
    };
}
