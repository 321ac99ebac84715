using System.Text.Json;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Cuda;

/// <summary>`--device` of `rlhf sft` and `rlhf ppo`, through the real binary.</summary>
[NonParallelizable]
public class DeviceOptionCliTests
{
    private static string Setup(TempDir dir)
    {
        DeviceCli.SaveTinyModel(dir, 2, 0.1f, "hi", "so");
        File.WriteAllLines(dir.File("sft.jsonl"), ["{\"prompt\": \"hi\", \"response\": \"ok\"}", "{\"prompt\": \"yo\", \"response\": \"no!\"}", "{\"prompt\": \"ab\", \"response\": \"cd\"}"]);
        return dir.File("model");
    }

    private static string[] Sft(TempDir dir, string device, string outName) =>
        ["sft", "--model", dir.File("model"), "--tokenizer", "bytes", "--data", dir.File("sft.jsonl"), "--out", dir.File(outName),
            "--steps", "2", "--batch-size", "2", "--held-out", "0.3", "--max-seq", "16", "--device", device];

    [Test]
    public void SftOnTheTestDeviceMatchesCpuEndToEnd()
    {
        using var dir = new TempDir();
        Setup(dir);
        DeviceCli.RunOnCpuAndTestDevice(dir, (device, output) => Sft(dir, device, output), "cpu-run", "dev-run");
        var a = Metrics(dir.File("cpu-run"));
        var b = Metrics(dir.File("dev-run"));
        Assert.That(b, Has.Count.EqualTo(a.Count).And.Count.GreaterThanOrEqualTo(5));
        for (int i = 0; i < a.Count; i++) Assert.That(b[i], Is.EqualTo(a[i]).Within(1e-4 * Math.Abs(a[i])), $"metric {i}");
        Assert.That(File.Exists(Path.Combine(dir.File("dev-run"), "model", "model.safetensors")));
    }

    [Test]
    public void CudaWithoutWhatItNeedsExitsTwoSayingWhatIsMissing()
    {
        using var dir = new TempDir();
        Setup(dir);
        var sft = CliRunner.Run(dir.Path, Sft(dir, "cuda", "run"));
        var ppo = CliRunner.Run(dir.Path, "ppo", "--model", dir.File("model"), "--tokenizer", "byte", "--prompts", dir.File("prompts.jsonl"),
            "--reward", "keyword:a", "--out", dir.File("ppo-run"), "--steps", "1", "--batch-size", "2", "--mini-batch-size", "2", "--max-new-tokens", "2", "--device", "cuda");
        DeviceCli.AssertCudaWorksOrFailsCleanly([("sft", sft), ("ppo", ppo)], () =>
        {
            foreach (var run in new[] { "run", "ppo-run" })
            {
                var path = dir.File(run);
                Assert.That(!Directory.Exists(path) || !Directory.EnumerateFileSystemEntries(path).Any(), $"{run} is left with files: nothing is written before the device opens");
            }
        });
    }

    [Test]
    public void UnknownDeviceIsAUsageError()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run(dir.Path, "sft", "--model", "m", "--tokenizer", "bytes", "--data", "d.jsonl", "--out", "o", "--device", "tpu");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("tpu"));
    }

    private static List<double> Metrics(string run)
    {
        var values = new List<double>();
        foreach (var line in File.ReadAllLines(Path.Combine(run, "metrics.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name is "loss" or "held_out_loss" or "grad_norm") values.Add(p.Value.GetDouble());
            }
        }

        return values;
    }
}
