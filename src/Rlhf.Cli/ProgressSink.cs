using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Rlhf.Cli;

/// <summary>
/// Where a long stage reports how far it got: <c>Report(stage, done, total, metric)</c> after each unit of work
/// (epoch, iteration, step, item). A stage is begun by its first report as if one unit had just been done (so after a
/// resume the ETA counts only this session's work), or explicitly with <see cref="Begin"/> when units come in chunks.
/// </summary>
internal abstract class ProgressSink
{
    public static readonly ProgressSink None = new NoProgress();

    public abstract void Begin(string stage, double total, double startAt = 0);

    /// <param name="metric">the stage's key metric as text, e.g. "loss 0.4123" (shown next to the bar).</param>
    public abstract void Report(string stage, double done, double total, string metric);

    private sealed class NoProgress : ProgressSink
    {
        public override void Begin(string stage, double total, double startAt = 0)
        {
        }

        public override void Report(string stage, double done, double total, string metric)
        {
        }
    }
}

/// <summary>One line per report on a plain writer: "stage done/total metric ETA Ns" (the ETA from this session's rate).</summary>
internal sealed class PlainProgress(TextWriter writer) : ProgressSink
{
    private readonly Dictionary<string, (Stopwatch Clock, double Start)> stages = [];

    public override void Begin(string stage, double total, double startAt = 0) => stages[stage] = (Stopwatch.StartNew(), startAt);

    public override void Report(string stage, double done, double total, string metric)
    {
        if (!stages.TryGetValue(stage, out var s)) stages[stage] = s = (Stopwatch.StartNew(), Math.Max(0, done - 1));
        double rate = done > s.Start ? s.Clock.Elapsed.TotalSeconds / (done - s.Start) : double.NaN;
        string eta = done < total && double.IsFinite(rate) ? string.Create(CultureInfo.InvariantCulture, $" ETA {rate * (total - done):F0}s") : "";
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{stage} {done:0.##}/{total:0.##} {metric}{eta}"));
        writer.Flush();
    }
}

/// <summary>Spectre.Console progress bars on standard error: a bar per stage with percentage, ETA and the stage's metric.</summary>
internal sealed class SpectreProgress : ProgressSink
{
    private readonly ProgressContext context;
    private readonly MetricColumn metrics;
    private readonly Dictionary<string, ProgressTask> tasks = [];

    private SpectreProgress(ProgressContext context, MetricColumn metrics)
    {
        this.context = context;
        this.metrics = metrics;
    }

    public static T Run<T>(Func<ProgressSink, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        var metrics = new MetricColumn();
        return console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 20 }, new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn(), metrics)
            .Start(ctx => work(new SpectreProgress(ctx, metrics)));
    }

    public override void Begin(string stage, double total, double startAt = 0)
    {
        Task(stage, total, startAt);
    }

    public override void Report(string stage, double done, double total, string metric)
    {
        var task = Task(stage, total, Math.Max(0, done - 1));
        task.MaxValue = Math.Max(total, 1e-9);
        task.Value = done;
        metrics.Text[task.Id] = metric;
    }

    private ProgressTask Task(string stage, double total, double startAt)
    {
        if (!tasks.TryGetValue(stage, out var task))
        {
            foreach (var other in tasks.Values) other.StopTask();
            tasks[stage] = task = context.AddTask(Markup.Escape(stage), maxValue: Math.Max(total, 1e-9));
            task.Value = startAt;
        }

        return task;
    }
}

/// <summary>The stage's key metric after the bar, cut with an ellipsis where the terminal is narrow.</summary>
internal sealed class MetricColumn : ProgressColumn
{
    /// <summary>Per task id; written by the work's thread, read by Spectre's render thread.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<int, string> Text { get; } = new();

    protected override bool NoWrap => true;

    // The other columns take about this much besides the description; a wider metric would make the grid wrap.
    private const int OtherColumns = 46;

    public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
    {
        string metric = Text.TryGetValue(task.Id, out var m) ? m : "";
        int room = Math.Max(8, options.ConsoleSize.Width - OtherColumns - task.Description.Length);
        if (metric.Length > room) metric = metric[..(room - 1)] + "…";
        return new Text(metric, new Style(Color.Grey));
    }
}
