namespace Rlhf.Native;

/// <summary>Status codes of the C ABI; keep in sync with RLHF_OK … in native/include/rlhf.h.</summary>
internal static class NativeStatus
{
    public const int Ok = 0;
    public const int BadArgument = 1;
    public const int Internal = 3;
}
