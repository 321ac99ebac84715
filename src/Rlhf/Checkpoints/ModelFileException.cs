using Rlhf.IO;

namespace Rlhf.Checkpoints;

/// <summary>
/// A model, checkpoint or adapter a user named that could not be loaded because of its files: missing, malformed, or
/// not fitting the model it was attached to. Bad input like any <see cref="InvalidInputException"/> (exit 2 on the
/// command line); the message names what was being loaded (when the caller said), then the file and tensor.
/// Thrown by <see cref="ModelFiles.Load{T}"/>; <see cref="Exception.InnerException"/> is what the load threw.
/// </summary>
public sealed class ModelFileException(string message, Exception inner) : InvalidInputException(message, inner);
