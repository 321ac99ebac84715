using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Model;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Cuda;

/// <summary>`--device` of `rlhf generate-completions` and `rlhf eval` (sampling through DeviceGenerator), through the real binary.</summary>
[NonParallelizable]
public class DeviceGenerationCliTests
{
    private static void Setup(TempDir dir)
    {
        var model = DeviceCli.SaveTinyModel(dir, 3, 0.3f, "hi", "so we", "a");

        // A PEFT adapter with non-zero B, so "after" samples differ from "before".
        var adapter = model.AttachAdapter(LoraConfig.Default(model.Config.Family, 2), 4);
        Rlhf.Tests.Model.ModelTestUtil.RandomFloats(adapter.Parameters.Length, 5, 0.5f).CopyTo(adapter.Parameters, 0);
        var t = new NamedTensors(dir.File("adapter"));
        foreach (var x in adapter.Tensors) t.Add(x.Name, x.Shape, adapter.Parameters.AsSpan(x.Offset, x.Length).ToArray());
        PeftLoraAdapter.Write(dir.File("adapter"), new LoraAdapterFiles(new LoraAdapterConfig(adapter.Rank, adapter.Config.Alpha, adapter.Config.TargetModules, null), t));
    }

    private static string[] Generate(TempDir dir, string device, string output) =>
        ["generate-completions", "--model", dir.File("model"), "--tokenizer", "byte", "--prompts", dir.File("prompts.jsonl"), "--k", "3",
            "--max-new-tokens", "6", "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", "11", "--out", dir.File(output), "--device", device];

    private static string[] Eval(TempDir dir, string device, string output) =>
        ["eval", "--model", dir.File("model"), "--tokenizer", "byte", "--prompts", dir.File("prompts.jsonl"), "--scorer", "keyword:a", "--reward", "keyword:e",
            "--adapter", dir.File("adapter"), "--max-new-tokens", "6", "--batch-size", "2", "--seed", "8", "--out", dir.File(output), "--device", device];

    [Test]
    public void GenerateCompletionsOnTheTestDeviceWritesTheCpuFile()
    {
        using var dir = new TempDir();
        Setup(dir);
        DeviceCli.RunOnCpuAndTestDevice(dir, (device, output) => Generate(dir, device, output), "cpu.jsonl", "dev.jsonl");
        var want = File.ReadAllLines(dir.File("cpu.jsonl"));
        Assert.That(want, Has.Length.EqualTo(3));
        Assert.That(File.ReadAllLines(dir.File("dev.jsonl")), Is.EqualTo(want), "the same sampled tokens, so the same file");
    }

    [Test]
    public void EvalOnTheTestDeviceSamplesTheCpuResponsesBeforeAndAfterTheAdapter()
    {
        using var dir = new TempDir();
        Setup(dir);
        DeviceCli.RunOnCpuAndTestDevice(dir, (device, output) => Eval(dir, device, output), "cpu-eval", "dev-eval");
        var a = Results(dir.File("cpu-eval"));
        var b = Results(dir.File("dev-eval"));
        Assert.That(a, Has.Count.EqualTo(2));
        Assert.That(a[1].Kl, Is.Not.EqualTo(0.0), "the adapter changes the policy");
        for (int i = 0; i < a.Count; i++)
        {
            Assert.That(b[i].Length, Is.EqualTo(a[i].Length), $"result {i}: the same response lengths");
            Assert.That(b[i].Reward, Is.EqualTo(a[i].Reward), $"result {i}: the same responses (reward)");
            Assert.That(b[i].Toxicity, Is.EqualTo(a[i].Toxicity), $"result {i}: the same responses (toxicity)");
            // The KL's forward passes run on the device too: fp32 rounding differs from the CPU's, the responses do not.
            Assert.That(b[i].Kl, Is.EqualTo(a[i].Kl).Within(1e-5 * Math.Max(1, Math.Abs(a[i].Kl))), $"result {i}: the same responses (KL, computed on the device)");
        }
    }

    [Test]
    public void CudaWithoutWhatItNeedsExitsTwoBeforeWritingAnything()
    {
        using var dir = new TempDir();
        Setup(dir);
        var runs = new[] { Generate(dir, "cuda", "gen.jsonl"), Eval(dir, "cuda", "eval-out") }.Select(a => (a[0], CliRunner.Run(dir.Path, a))).ToList();
        DeviceCli.AssertCudaWorksOrFailsCleanly(runs, () =>
        {
            Assert.That(File.Exists(dir.File("gen.jsonl")), Is.False, "generate-completions wrote nothing");
            Assert.That(Directory.Exists(dir.File("eval-out")), Is.False, "eval wrote nothing");
        });
    }

    private static List<(double Toxicity, double Reward, double Kl, double Length)> Results(string run)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json")));
        var list = new List<(double, double, double, double)>();
        foreach (var r in EvalResults(doc.RootElement))
        {
            list.Add((Number(r, "MeanToxicity"), Number(r, "MeanReward"), Number(r, "MeanKl"), Number(r, "MeanResponseLength")));
        }

        return list;
    }

    private static JsonElement.ArrayEnumerator EvalResults(JsonElement root) =>
        (root.ValueKind == JsonValueKind.Array ? root : root.GetProperty("results")).EnumerateArray();

    private static double Number(JsonElement e, string name)
    {
        foreach (var p in e.EnumerateObject())
        {
            if (string.Equals(p.Name.Replace("_", ""), name, StringComparison.OrdinalIgnoreCase)) return p.Value.GetDouble();
        }

        throw new KeyNotFoundException(name);
    }
}
