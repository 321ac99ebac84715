using System.Runtime.InteropServices;
using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Model;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cuda;

/// <summary>`--device` of `rlhf sft` and `rlhf ppo`, through the real binary.</summary>
[NonParallelizable]
public class DeviceOptionCliTests
{
    private static string Setup(TempDir dir)
    {
        var model = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 8, 1, 2));
        model.InitializeRandom(2, 0.1f);
        ModelCheckpoint.SaveHf(model, dir.File("model"));
        File.WriteAllLines(dir.File("sft.jsonl"), ["{\"prompt\": \"hi\", \"response\": \"ok\"}", "{\"prompt\": \"yo\", \"response\": \"no!\"}", "{\"prompt\": \"ab\", \"response\": \"cd\"}"]);
        File.WriteAllLines(dir.File("prompts.jsonl"), ["{\"prompt\": \"hi\"}", "{\"prompt\": \"so\"}"]);
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
        var cpu = CliRunner.Run(dir.Path, Sft(dir, "cpu", "cpu-run"));
        var dev = CliRunner.Run(dir.Path, Sft(dir, "ilgpu-cpu", "dev-run"));
        Assert.That(cpu.ExitCode, Is.EqualTo(0), cpu.Stderr);
        Assert.That(dev.ExitCode, Is.EqualTo(0), dev.Stderr);
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
        if (NativeLibrary.TryLoad("libcuda.so.1", out nint driver))
        {
            // A GPU machine: the run either works or names the missing piece (a device or cuBLAS).
            NativeLibrary.Free(driver);
            foreach (var r in new[] { sft, ppo })
            {
                Assert.That(r.ExitCode, Is.EqualTo(0).Or.EqualTo(2), r.Stderr);
                if (r.ExitCode == 2) Assert.That(r.Stderr, Does.Contain("CUDA device").Or.Contain("cuBLAS"));
            }

            return;
        }

        foreach (var r in new[] { sft, ppo })
        {
            Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
            Assert.That(r.Stderr, Does.Contain("no NVIDIA driver found"));
        }

        foreach (var run in new[] { "run", "ppo-run" })
        {
            var path = dir.File(run);
            Assert.That(!Directory.Exists(path) || !Directory.EnumerateFileSystemEntries(path).Any(), $"{run} is left with files: nothing is written before the device opens");
        }
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
