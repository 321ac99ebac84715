using System.Diagnostics;

namespace Rlhf.Tests.DeviceBench;

/// <summary>
/// The GPU runner (benchmarks/Rlhf.DeviceBench, published by benchmarks/gpu/run.sh) runs end to end on ILGPU's CPU
/// accelerator: every device kernel's parity check passes and the report is written.
/// </summary>
public class DeviceBenchRunTests
{
    [Test]
    public void RunsEndToEnd_OnTheCpuAccelerator_WithEveryParityCheckPassing()
    {
        var testDir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        var root = testDir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Engine.sln"))) root = root.Parent;
        Assert.That(root, Is.Not.Null);
        string dll = Path.Combine(root!.FullName, "benchmarks", "Rlhf.DeviceBench", "bin", testDir.Parent!.Parent!.Name, testDir.Parent.Name, testDir.Name, "Rlhf.DeviceBench.dll");
        Assert.That(File.Exists(dll), Is.True, dll);
        string outDir = Directory.CreateTempSubdirectory("devicebench-").FullName;
        try
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { dll, "--device", "cpu", "--scale", "small", "--out", outDir }) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            Assert.That(p.WaitForExit(TimeSpan.FromMinutes(5)), Is.True, "DeviceBench did not finish in 5 minutes");
            Assert.That(p.ExitCode, Is.EqualTo(0), stdout.Result + stderr.Result);
            string report = File.ReadAllText(Path.Combine(outDir, "device-report.md"));
            Assert.That(report, Does.Contain("| GAE advantages").And.Contain("| token log-probs").And.Contain("| AdamW parameters"));
            Assert.That(report, Does.Contain("| PPO rollout on the device").And.Contain("| PPO update from the device rollout"));
            Assert.That(report, Does.Contain("| decoding picks on the device (sampled").And.Contain("| decoding picks on the device (greedy)"));
            Assert.That(report, Does.Not.Contain("FAIL"));
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }
}
