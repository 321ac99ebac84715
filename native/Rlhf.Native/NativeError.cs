using System.Text;

namespace Rlhf.Native;

/// <summary>
/// The last failure's message per OS thread. An [UnmanagedCallersOnly] export runs on its caller's thread, so a
/// thread-static here is the C caller's thread-local error, like errno.
/// </summary>
internal static unsafe class NativeError
{
    [ThreadStatic]
    private static string? s_last;

    /// <summary>Maps an exception to a status and remembers its message; nothing is thrown across the boundary.</summary>
    public static int Fail(Exception exception)
    {
        if (exception is ArgumentException)
        {
            s_last = exception.Message;
            return NativeStatus.BadArgument;
        }

        s_last = exception.GetType().FullName + ": " + exception.Message;
        return NativeStatus.Internal;
    }

    /// <summary>
    /// Writes the last message as NUL-terminated UTF-8 into buffer[0, capacity), truncated on a character boundary;
    /// returns the bytes written without the NUL (0 when there was no failure on this thread).
    /// </summary>
    public static int CopyTo(byte* buffer, int capacity)
    {
        if (buffer == null || capacity <= 0) return 0;
        string message = s_last ?? "";
        if (capacity == 1 || message.Length == 0)
        {
            buffer[0] = 0;
            return 0;
        }

        var destination = new Span<byte>(buffer, capacity - 1);
        int written = 0;
        var encoder = Encoding.UTF8.GetEncoder();
        encoder.Convert(message, destination, flush: true, out _, out written, out _);
        buffer[written] = 0;
        return written;
    }
}
