namespace Rlhf.Compute;

/// <summary>
/// A compute device was asked for (<c>--device cuda</c>) but this machine cannot provide it; the message says what is
/// missing (the NVIDIA driver, a CUDA device, or cuBLAS). It is bad input for the command line (exit code 2), since
/// the fix is another option or another machine.
/// </summary>
public sealed class DeviceUnavailableException : Rlhf.IO.InvalidInputException
{
    public DeviceUnavailableException(string message, Exception? inner = null) : base(message)
    {
        InnerCause = inner;
    }

    /// <summary>The loader's or driver's own error, when there was one.</summary>
    public Exception? InnerCause { get; }
}
