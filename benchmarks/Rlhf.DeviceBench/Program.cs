using System.Globalization;
using Rlhf.DeviceBench;
using Rlhf.Kernels.Device;

// Usage: Rlhf.DeviceBench [--device cpu|cuda] [--scale small|full] [--out DIR]
// "small" shapes keep ILGPU's CPU accelerator (a simulated GPU, ~80x slower) to seconds; "full" is the issue's shapes.
string deviceKind = "cpu", scaleName = "small", outDir = ".";
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--device": deviceKind = args[++i]; break;
        case "--scale": scaleName = args[++i]; break;
        case "--out": outDir = args[++i]; break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'; usage: --device cpu|cuda --scale small|full --out DIR");
            return 2;
    }
}

var scale = scaleName switch
{
    "small" => BenchScale.Small,
    "full" => BenchScale.Full,
    _ => throw new ArgumentException($"--scale must be small or full, got '{scaleName}'"),
};

using var device = deviceKind switch
{
    "cpu" => KernelDevice.CreateCpu(),
    "cuda" => KernelDevice.CreateCuda(),
    _ => throw new ArgumentException($"--device must be cpu or cuda, got '{deviceKind}'"),
};

var report = new DeviceReport($"{device.Accelerator.Name} ({device.Accelerator.AcceleratorType}), scale {scaleName}");
foreach (var suite in Suites.All)
{
    suite(device, scale, report);
}

Directory.CreateDirectory(outDir);
File.WriteAllText(Path.Combine(outDir, "device-report.md"), report.ToMarkdown());
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"report: {Path.Combine(outDir, "device-report.md")}"));
return report.AllParityPassed ? 0 : 1;
