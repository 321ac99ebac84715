using System.Text;

namespace Rlhf.Tokenizers;

/// <summary>
/// Byte-level tokenizer for tiny models trained here: ids 0..255 are the UTF-8 bytes of the text, then
/// <see cref="Bos"/> = 256, <see cref="Eos"/> = 257, <see cref="Pad"/> = 258 (VocabSize 259).
/// Lossless: Decode(Encode(s)) == s for every string that is valid UTF-16 (no lone surrogates).
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public const int Bos = 256;
    public const int Eos = 257;
    public const int Pad = 258;
    public const int Size = 259;

    // Invalid byte sequences (e.g. a sample cut mid-character) decode to U+FFFD instead of throwing.
    private static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    public int VocabSize => Size;

    public int? BosId => Bos;

    public int? EosId => Eos;

    public int PadId => Pad;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int n = Utf8.GetByteCount(text);
        var ids = new int[n];
        byte[] bytes = Utf8.GetBytes(text);
        for (int i = 0; i < n; i++)
        {
            ids[i] = bytes[i];
        }

        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        TokenIds.Check(ids, Size, nameof(ids));
        var bytes = new byte[ids.Length];
        int n = 0;
        foreach (int id in ids)
        {
            if (id < 256)
            {
                bytes[n++] = (byte)id;
            }
        }

        return Utf8.GetString(bytes, 0, n);
    }

    /// <summary>Printable ASCII as itself, other bytes as &lt;0xXX&gt;, specials as &lt;bos&gt;, &lt;eos&gt;, &lt;pad&gt;.</summary>
    public string TokenToString(int id)
    {
        TokenIds.Check(id, Size, nameof(id));
        return id switch
        {
            Bos => "<bos>",
            Eos => "<eos>",
            Pad => "<pad>",
            >= 0x20 and < 0x7f => ((char)id).ToString(),
            _ => $"<0x{id:X2}>",
        };
    }
}
