namespace Rlhf.IO;

/// <summary>
/// Bad input from a user's file or option. The message names the file and line (or the option) so the
/// user can fix it; the command line maps it to exit code 2.
/// </summary>
public class InvalidInputException : Exception
{
    public InvalidInputException(string message) : base(message)
    {
    }

    public InvalidInputException(string message, Exception? inner) : base(message, inner)
    {
    }

    public InvalidInputException(string file, int line, string message)
        : base($"{file}:{line}: {message}")
    {
        File = file;
        Line = line;
    }

    public string? File { get; }

    public int? Line { get; }
}
