using Rlhf.Formats;

namespace Rlhf.Checkpoints;

/// <summary>
/// The one place that decides which failures of loading a user's model, checkpoint or adapter are the files' fault
/// (and so bad input) rather than the program's: every caller gets the same answer and the same message shape.
/// </summary>
public static class ModelFiles
{
    /// <summary>
    /// Runs <paramref name="load"/>; what a missing or malformed file throws (<see cref="CheckpointFormatException"/>,
    /// <see cref="FileNotFoundException"/>, <see cref="DirectoryNotFoundException"/>, or <see cref="ArgumentException"/> for
    /// a config or adapter the model cannot take) becomes a <see cref="ModelFileException"/> whose message is
    /// "<paramref name="subject"/>: " (when given, e.g. the option that named the file) followed by the original message.
    /// </summary>
    /// <exception cref="ModelFileException">The files could not be loaded.</exception>
    public static T Load<T>(string? subject, Func<T> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        try
        {
            return load();
        }
        catch (Exception e) when (e is CheckpointFormatException or FileNotFoundException or DirectoryNotFoundException or ArgumentException)
        {
            throw new ModelFileException(subject is null ? e.Message : $"{subject}: {e.Message}", e);
        }
    }

    /// <summary><see cref="Load{T}"/> for a load that returns nothing (attaching an adapter).</summary>
    public static void Load(string? subject, Action load)
    {
        ArgumentNullException.ThrowIfNull(load);
        Load(subject, () =>
        {
            load();
            return true;
        });
    }
}
