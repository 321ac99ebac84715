using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Cuda;

/// <summary>`rlhf ppo --device` (state and rollout resident on the device) against `--device cpu`, through the real binary.</summary>
[NonParallelizable]
public class DevicePpoCliTests
{
    private static string[] Ppo(TempDir dir, string device, string output) =>
        ["ppo", "--model", dir.File("model"), "--tokenizer", "byte", "--prompts", dir.File("prompts.jsonl"), "--reward", "keyword:e", "--out", dir.File(output),
            "--steps", "3", "--batch-size", "4", "--mini-batch-size", "2", "--max-new-tokens", "4", "--lora-rank", "2", "--lr", "0.02",
            "--checkpoint-every", "2", "--kl-estimator", "K3", "--seed", "9", "--device", device];

    [Test]
    public void ThreeIterationsWithACheckpointMatchTheCpuRun()
    {
        using var dir = new TempDir();
        DeviceCli.SaveTinyModel(dir, 2, 0.3f, "hi", "see", "we");
        DeviceCli.RunOnCpuAndTestDevice(dir, (device, output) => Ppo(dir, device, output), "cpu-run", "dev-run");

        var a = Metrics(dir.File("cpu-run"));
        var b = Metrics(dir.File("dev-run"));
        Assert.That(b, Has.Count.EqualTo(a.Count).And.Count.EqualTo(3 * 6));
        for (int i = 0; i < a.Count; i++) Assert.That(b[i].Value, Is.EqualTo(a[i].Value).Within(1e-4 * Math.Abs(a[i].Value) + 1e-6), a[i].Name);

        // The mid-run checkpoint (iteration 2) and the final adapter hold the device's weights at those points.
        foreach (var (file, tensor) in new[] { ("checkpoint-000002/" + Rlhf.Ppo.PpoTrainer.TensorsFileName, "policy.trainable"), ("final/value_head.safetensors", "") })
        {
            var want = Safetensors.Read(Path.Combine(dir.File("cpu-run"), file));
            var got = Safetensors.Read(Path.Combine(dir.File("dev-run"), file));
            foreach (var t in want)
            {
                if (tensor.Length > 0 && t.Name != tensor) continue;
                DeviceTestBase.AssertCloseTo(got.Get(t.Name, t.Shape), t.Data, 1e-4, $"{file}: {t.Name}");
            }
        }

        var finalWant = PeftLoraAdapter.Read(Path.Combine(dir.File("cpu-run"), "final"));
        var finalGot = PeftLoraAdapter.Read(Path.Combine(dir.File("dev-run"), "final"));
        foreach (var t in finalWant.Tensors)
        {
            var match = finalGot.Tensors.Single(x => x.Name == t.Name);
            DeviceTestBase.AssertCloseTo(match.Data, t.Data, 1e-4, "final adapter: " + t.Name);
        }
    }

    private static List<(string Name, double Value)> Metrics(string run)
    {
        var values = new List<(string, double)>();
        foreach (var line in File.ReadAllLines(Path.Combine(run, "metrics.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                string n = p.Name.Replace("_", "").ToLowerInvariant();
                if (n is "meanscore" or "meankl" or "policyloss" or "valueloss" or "entropy" or "explainedvariance") values.Add((p.Name, p.Value.GetDouble()));
            }
        }

        return values;
    }
}
