using Rlhf.Formats;

namespace Rlhf.Checkpoints;

/// <summary>
/// A checkpoint's context length read from its config alone (config.json, or the llama2.c header), so a command can
/// check a length option against the model before loading the weights or writing anything.
/// </summary>
public static class CheckpointContext
{
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
            return File.Exists(path) ? Llama2cHeader.Read(path).SeqLen : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or CheckpointFormatException or ArgumentException or NotSupportedException)
        {
            return null;
        }
    }
}
