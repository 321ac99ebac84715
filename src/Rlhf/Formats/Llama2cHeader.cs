using System.Buffers.Binary;

namespace Rlhf.Formats;

/// <summary>
/// The 7-int32 header of a llama2.c (legacy, version 0) checkpoint: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
/// vocab_size, seq_len (little-endian; vocab_size &lt; 0 means an unshared classifier). The only code that reads or
/// writes these bytes, so the loader and anything that peeks at a checkpoint's config agree on what a valid one is.
/// </summary>
public sealed record Llama2cHeader(int Dim, int HiddenDim, int NumLayers, int NumHeads, int NumKvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    /// <summary>Bytes the header takes at the start of the file; the weights follow.</summary>
    public const int ByteCount = 7 * sizeof(int);

    // llama2.c's export.py version 1/2 files start with this magic ("ak42"); run.c cannot read them either.
    private const int VersionedMagic = 0x616b3432;

    public int HeadSize => Dim / NumHeads;

    public int KvDim => Dim / NumHeads * NumKvHeads;

    /// <summary>Reads and validates the header at the start of the file at <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointFormatException">The file is shorter than a header, is a versioned export, or a field is
    /// impossible (names the field).</exception>
    public static Llama2cHeader Read(string path)
    {
        using var fs = File.OpenRead(path);
        return Read(fs, path);
    }

    /// <summary>Reads and validates the header at <paramref name="stream"/>'s position; <paramref name="path"/> names it in errors.</summary>
    /// <exception cref="CheckpointFormatException">As <see cref="Read(string)"/>.</exception>
    public static Llama2cHeader Read(Stream stream, string path)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> hb = stackalloc byte[ByteCount];
        if (stream.ReadAtLeast(hb, ByteCount, throwOnEndOfStream: false) < ByteCount)
        {
            throw new CheckpointFormatException(path, null, $"truncated: {stream.Length} bytes, the llama2.c header needs {ByteCount}");
        }

        Span<int> h = stackalloc int[7];
        for (int i = 0; i < 7; i++)
        {
            h[i] = BinaryPrimitives.ReadInt32LittleEndian(hb.Slice(4 * i));
        }

        if (h[0] == VersionedMagic)
        {
            throw new CheckpointFormatException(path, null, "this is a llama2.c versioned export (magic 'ak42'); only the legacy format (export version 0) is supported");
        }

        // The sign of vocab_size only says whether the classifier is shared; 0 and int.MinValue (which has no positive
        // counterpart) are no vocabulary at all, and are reported as written rather than as their magnitude.
        if (h[5] is 0 or int.MinValue)
        {
            throw new CheckpointFormatException(path, "vocab_size",
                $"header field vocab_size = {h[5]}, expected a nonzero size (negative means unshared classifier weights)");
        }

        var header = new Llama2cHeader(h[0], h[1], h[2], h[3], h[4], Math.Abs(h[5]), h[6], h[5] > 0);
        header.Validate(path);
        return header;
    }

    /// <summary>Writes the header's bytes; vocab_size is written negative when the classifier is not shared.</summary>
    public void Write(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> hb = stackalloc byte[ByteCount];
        ReadOnlySpan<int> h = [Dim, HiddenDim, NumLayers, NumHeads, NumKvHeads, SharedClassifier ? VocabSize : -VocabSize, SeqLen];
        for (int i = 0; i < 7; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(hb.Slice(4 * i), h[i]);
        }

        stream.Write(hb);
    }

    private void Validate(string path)
    {
        void Positive(string field, int v)
        {
            if (v <= 0)
            {
                throw new CheckpointFormatException(path, field, $"header field {field} = {v}, expected > 0");
            }
        }

        Positive("dim", Dim);
        Positive("hidden_dim", HiddenDim);
        Positive("n_layers", NumLayers);
        Positive("n_heads", NumHeads);
        Positive("n_kv_heads", NumKvHeads);
        Positive("vocab_size", VocabSize);
        Positive("seq_len", SeqLen);
        if (Dim % NumHeads != 0 || HeadSize % 2 != 0)
        {
            throw new CheckpointFormatException(path, "n_heads", $"header field n_heads = {NumHeads} does not split dim {Dim} into heads of even size");
        }

        if (NumHeads % NumKvHeads != 0)
        {
            throw new CheckpointFormatException(path, "n_kv_heads", $"header field n_kv_heads = {NumKvHeads} does not divide n_heads = {NumHeads}");
        }
    }
}
