using System.Globalization;
using System.Text.Json.Nodes;
using Rlhf.IO;
using Rlhf.Reward;

namespace Rlhf.Cli.Commands;

/// <summary>
/// The metrics.jsonl of a train-reward or train-classifier run, rewritten whole after each epoch (atomically, so a
/// killed run leaves the epochs it finished), with the epoch's progress report.
/// </summary>
internal sealed class EpochMetricsLog(string path, string stage, int epochs)
{
    private readonly List<string> lines = [];

    /// <summary>The last epoch's line (null before the first).</summary>
    public JsonObject? Last { get; private set; }

    public void Add(HeadEpochMetrics m, ProgressSink progress)
    {
        Last = Line(m);
        lines.Add(Last.ToJsonString());
        AtomicFile.WriteAllText(path, string.Join("\n", lines) + "\n");
        progress.Report(stage, m.Epoch, epochs, string.Create(CultureInfo.InvariantCulture,
            $"loss {m.TrainLoss:F4} acc {m.TrainAccuracy:F3} | held-out loss {m.HeldOutLoss:F4} acc {m.HeldOutAccuracy:F3}"));
    }

    /// <summary>
    /// One epoch's line. A non-finite training loss means training diverged and the weights are useless: that fails
    /// the run naming the epoch (JSON has no NaN to write it as); held-out values that are not finite (none held out)
    /// are written as null.
    /// </summary>
    private static JsonObject Line(HeadEpochMetrics m)
    {
        if (!double.IsFinite(m.TrainLoss))
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"epoch {m.Epoch}: the training loss is {m.TrainLoss}; training diverged (try a lower --lr)"));
        return new JsonObject
        {
            ["epoch"] = m.Epoch, ["steps"] = m.Steps, ["train_loss"] = m.TrainLoss, ["train_accuracy"] = m.TrainAccuracy,
            ["eval_loss"] = Finite(m.HeldOutLoss), ["eval_accuracy"] = Finite(m.HeldOutAccuracy), ["seconds"] = m.Seconds,
        };
    }

    private static JsonNode? Finite(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;
}
