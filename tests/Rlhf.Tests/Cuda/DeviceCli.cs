using System.Runtime.InteropServices;
using Rlhf.Checkpoints;
using Rlhf.Model;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cuda;

/// <summary>Shared set-up of the `--device` CLI tests: a tiny byte-level GPT-2 on disk and one command run on the CPU
/// and on the test device.</summary>
internal static class DeviceCli
{
    /// <summary>Saves a random 2-layer GPT-2 as <c>model</c> and the prompts as <c>prompts.jsonl</c>; returns the model.</summary>
    public static TransformerModel SaveTinyModel(TempDir dir, int seed, float scale, params string[] prompts)
    {
        var model = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 8, 1, 2));
        model.InitializeRandom((ulong)seed, scale);
        ModelCheckpoint.SaveHf(model, dir.File("model"));
        File.WriteAllLines(dir.File("prompts.jsonl"), Array.ConvertAll(prompts, p => $"{{\"prompt\": \"{p}\"}}"));
        return model;
    }

    /// <summary>Runs <paramref name="command"/> (device, output name) with <c>cpu</c> into cpu-out and with the
    /// CPU-accelerator test device into dev-out, and checks both succeeded.</summary>
    public static void RunOnCpuAndTestDevice(TempDir dir, Func<string, string, string[]> command, string cpuOutput, string deviceOutput)
    {
        var cpu = CliRunner.Run(dir.Path, command("cpu", cpuOutput));
        var dev = CliRunner.Run(dir.Path, command("ilgpu-cpu", deviceOutput));
        Assert.That(cpu.ExitCode, Is.EqualTo(0), cpu.Stderr);
        Assert.That(dev.ExitCode, Is.EqualTo(0), dev.Stderr);
    }

    /// <summary>
    /// Checks `--device cuda` runs: on a machine with an NVIDIA driver each either works or exits 2 naming the missing
    /// device or cuBLAS; without one each exits 2 saying no driver was found, and (checked by the caller through
    /// <paramref name="wroteNothing"/>) before writing anything.
    /// </summary>
    public static void AssertCudaWorksOrFailsCleanly(IEnumerable<(string Name, CliRunner.Result Run)> runs, Action wroteNothing)
    {
        bool gpuMachine = NativeLibrary.TryLoad("libcuda.so.1", out nint driver);
        if (gpuMachine) NativeLibrary.Free(driver);
        foreach (var (name, r) in runs)
        {
            if (gpuMachine)
            {
                Assert.That(r.ExitCode, Is.EqualTo(0).Or.EqualTo(2), name + ": " + r.Stderr);
                if (r.ExitCode == 2) Assert.That(r.Stderr, Does.Contain("CUDA device").Or.Contain("cuBLAS"), name);
            }
            else
            {
                Assert.That(r.ExitCode, Is.EqualTo(2), name + ": " + r.Stdout + r.Stderr);
                Assert.That(r.Stderr, Does.Contain("no NVIDIA driver found"), name);
            }
        }

        if (!gpuMachine) wroteNothing();
    }
}
