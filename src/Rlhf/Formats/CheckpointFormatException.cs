using Rlhf.IO;

namespace Rlhf.Formats;

/// <summary>
/// A checkpoint, config or tokenizer file whose content is malformed or does not match what the caller expects.
/// The message always starts with "file PATH:" and names the tensor or field (<see cref="Item"/>) when there is one.
/// Such a file is one a user named, so this is bad input like any <see cref="InvalidInputException"/> (exit 2 on the
/// command line), wherever it is read.
/// </summary>
public sealed class CheckpointFormatException : InvalidInputException
{
    public CheckpointFormatException(string file, string? item, string message, Exception? inner = null)
        : base($"file {file}: {message}", inner)
    {
        FilePath = file;
        Item = item;
    }

    /// <summary>The file (or in-memory source name) the problem was found in.</summary>
    public string FilePath { get; }

    /// <summary>The tensor or field name, or null when the problem concerns the whole file.</summary>
    public string? Item { get; }
}
