using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

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
    private readonly Dictionary<string, ProgressTask> tasks = [];

    private SpectreProgress(ProgressContext context) => this.context = context;

    public static T Run<T>(Func<ProgressSink, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => work(new SpectreProgress(ctx)));
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
        task.Description = $"{Markup.Escape(stage)} [grey]{Markup.Escape(metric)}[/]";
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
