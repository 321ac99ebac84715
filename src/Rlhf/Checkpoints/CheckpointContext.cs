using System.Buffers.Binary;
using Rlhf.Formats;

namespace Rlhf.Checkpoints;

/// <summary>
/// A checkpoint's context length read from its config alone (config.json, or the llama2.c header), so a command can
/// check a length option against the model before loading the weights or writing anything.
/// </summary>
public static class CheckpointContext
{
    // 'ak42': a versioned llama2.c export, whose header is laid out differently (the loader rejects it).
    private const int VersionedMagic = 0x616b3432;

    /// <summary>
    /// The context length of the checkpoint at <paramref name="path"/> (as <see cref="ModelCheckpoint.Load"/> would
    /// see it), or null when it cannot be read here; loading the checkpoint then reports what is wrong with it.
    /// </summary>
    public static int? TryRead(string path)
    {
        try
        {
            if (Directory.Exists(path))
                return ModelCheckpoint.ToTransformerConfig(HfConfigJson.Read(Path.Combine(path, HfCheckpoint.ConfigFileName))).ContextLength;
            if (!File.Exists(path)) return null;
            // llama2.c header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (int32 little-endian).
            Span<byte> header = stackalloc byte[7 * sizeof(int)];
            using var fs = File.OpenRead(path);
            if (fs.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length) return null;
            int dim = BinaryPrimitives.ReadInt32LittleEndian(header);
            int seqLen = BinaryPrimitives.ReadInt32LittleEndian(header[(6 * sizeof(int))..]);
            return dim > 0 && dim != VersionedMagic && seqLen > 0 ? seqLen : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException or NotSupportedException)
        {
            return null;
        }
    }
}
