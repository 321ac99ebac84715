using System.Text.Json;
using System.Text.Json.Serialization;
using Rlhf.Formats;
using Rlhf.IO;

namespace Rlhf.Ppo;

/// <summary>
/// A PPO run in a directory: config.json (the effective options), metrics.jsonl (one <see cref="PpoMetrics"/> a line),
/// checkpoint-NNNNNN/ every CheckpointEvery iterations and at the end, and final/ (PEFT adapter or merged-free
/// HF weights, plus value_head.safetensors). <see cref="Run"/> resumes from the latest checkpoint when asked.
/// </summary>
public static class PpoRun
{
    public const string ConfigFileName = "config.json";
    public const string MetricsFileName = "metrics.jsonl";

    /// <summary>JSON settings used for config.json and metrics lines (enums as names, ±∞ allowed).</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>The newest checkpoint-* folder in <paramref name="runDirectory"/>, or null.</summary>
    public static string? LatestCheckpoint(string runDirectory)
    {
        if (!Directory.Exists(runDirectory)) return null;
        string? best = null;
        foreach (var d in Directory.GetDirectories(runDirectory, "checkpoint-*"))
        {
            if (!File.Exists(Path.Combine(d, PpoTrainer.StateFileName))) continue;
            if (best is null || string.CompareOrdinal(Path.GetFileName(d), Path.GetFileName(best)) > 0) best = d;
        }

        return best;
    }

    /// <summary>
    /// Runs iterations until Options.MaxSteps are done or a mean score reaches Options.RewardThreshold; calls
    /// <paramref name="progress"/> after each. With <paramref name="resume"/>, continues from the latest checkpoint
    /// (metrics lines after it are dropped so the file matches an uninterrupted run). Returns every iteration's metrics.
    /// </summary>
    public static List<PpoMetrics> Run(PpoTrainer trainer, string runDirectory, bool resume = false, Action<PpoMetrics>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentException.ThrowIfNullOrEmpty(runDirectory);
        Directory.CreateDirectory(runDirectory);
        string metricsPath = Path.Combine(runDirectory, MetricsFileName);
        if (resume && LatestCheckpoint(runDirectory) is string ckpt)
        {
            trainer.LoadCheckpoint(ckpt);
            TrimMetrics(metricsPath, trainer.Iteration);
        }
        else if (File.Exists(metricsPath))
        {
            File.Delete(metricsPath);
        }

        AtomicFile.WriteAllText(Path.Combine(runDirectory, ConfigFileName), JsonSerializer.Serialize(trainer.Options, new JsonSerializerOptions(Json) { WriteIndented = true }));
        var all = new List<PpoMetrics>();
        var o = trainer.Options;
        while (trainer.Iteration < o.MaxSteps)
        {
            var m = trainer.Step();
            all.Add(m);
            File.AppendAllText(metricsPath, JsonSerializer.Serialize(m, Json) + "\n");
            progress?.Invoke(m);
            bool done = trainer.Iteration >= o.MaxSteps || (o.RewardThreshold is float th && m.MeanScore >= th);
            if (done || (o.CheckpointEvery > 0 && trainer.Iteration % o.CheckpointEvery == 0))
                trainer.SaveCheckpoint(Path.Combine(runDirectory, $"checkpoint-{trainer.Iteration:D6}"));
            if (done) break;
        }

        SaveFinal(trainer, Path.Combine(runDirectory, "final"));
        return all;
    }

    /// <summary>The trained policy in interoperable form: a PEFT adapter folder (LoRA) or an HF checkpoint, plus the value head.</summary>
    public static void SaveFinal(PpoTrainer trainer, string directory)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        Directory.CreateDirectory(directory);
        var policy = trainer.Policy;
        if (policy.Adapter is { } a)
        {
            var t = new NamedTensors(directory);
            foreach (var x in a.Tensors) t.Add(x.Name, x.Shape, a.Parameters.AsSpan(x.Offset, x.Length).ToArray());
            PeftLoraAdapter.Write(directory, new LoraAdapterFiles(new LoraAdapterConfig(a.Rank, a.Config.Alpha, a.Config.TargetModules, null), t));
        }
        else
        {
            Checkpoints.ModelCheckpoint.SaveHf(policy, directory);
        }

        var head = new NamedTensors(directory);
        foreach (var x in trainer.ValueHead.Tensors) head.Add(x.Name, x.Shape, trainer.ValueHead.Parameters.AsSpan(x.Offset, x.Length).ToArray());
        Safetensors.Write(Path.Combine(directory, "value_head.safetensors"), head);
    }

    private static void TrimMetrics(string path, int iteration)
    {
        if (!File.Exists(path)) return;
        var keep = new List<string>();
        foreach (var line in File.ReadAllLines(path))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.GetProperty(nameof(PpoMetrics.Iteration)).GetInt32() <= iteration) keep.Add(line);
        }

        AtomicFile.WriteAllText(path, keep.Count == 0 ? "" : string.Join("\n", keep) + "\n");
    }
}
