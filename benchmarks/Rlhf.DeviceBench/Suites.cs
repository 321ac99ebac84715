using Rlhf.Kernels.Device;

namespace Rlhf.DeviceBench;

internal static class Suites
{
    public static readonly Action<KernelDevice, BenchScale, DeviceReport>[] All =
    [
        CopySuite.Run,
        PpoSuite.Run,
        VocabularySuite.Run,
        ModelSuite.Run,
        SamplingSuite.Run,
        TrainingSuite.Run,
    ];
}
