using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Rlhf.Model;

/// <summary>What a timed span of a step did: one layer type, or a matrix product by its role.</summary>
public enum LayerKind
{
    Embedding,
    Norm,
    QkvMatmul,
    AttentionProjectionMatmul,
    MlpUpMatmul,
    MlpDownMatmul,
    LmHeadMatmul,
    AttentionCore,
    Rope,
    Activation,
    ResidualAdd,
    KvCacheWrite,
    Loss,
    Optimizer,
}

/// <summary>The pass a timed span belongs to; the vocabulary loss (forward and gradient fused) counts as forward.</summary>
public enum ProfilePass
{
    Forward,
    Backward,
    Update,
}

/// <summary>
/// Opt-in accumulator of wall time per (layer type, pass). Attach one to <see cref="TransformerModel.Profiler"/>
/// (null by default: the instrumented code then pays one null check per layer call and reads no clock).
/// Spans are measured around whole (parallel) kernel calls, so they add up to the step's wall time.
/// </summary>
public sealed class LayerProfile
{
    private static readonly int Kinds = Enum.GetValues<LayerKind>().Length;
    private static readonly int Passes = Enum.GetValues<ProfilePass>().Length;
    private readonly long[] ticks = new long[Kinds * Passes];
    private readonly long[] calls = new long[Kinds * Passes];

    /// <summary>Steps recorded (advanced by the caller with <see cref="EndStep"/>); the table divides by it.</summary>
    public int Steps { get; private set; }

    /// <summary>The clock value a <see cref="Lap"/> measures from.</summary>
    public static long Now => Stopwatch.GetTimestamp();

    /// <summary>Adds the time since <paramref name="mark"/> to (kind, pass) and moves the mark to now.</summary>
    public void Lap(LayerKind kind, ProfilePass pass, ref long mark)
    {
        long now = Stopwatch.GetTimestamp();
        int i = (int)kind * Passes + (int)pass;
        ticks[i] += now - mark;
        calls[i]++;
        mark = now;
    }

    public void EndStep() => Steps++;

    public void Reset()
    {
        Array.Clear(ticks);
        Array.Clear(calls);
        Steps = 0;
    }

    /// <summary>Total time recorded for (kind, pass).</summary>
    public TimeSpan Elapsed(LayerKind kind, ProfilePass pass) => Stopwatch.GetElapsedTime(0, ticks[(int)kind * Passes + (int)pass]);

    /// <summary>Number of spans recorded for (kind, pass).</summary>
    public long Calls(LayerKind kind, ProfilePass pass) => calls[(int)kind * Passes + (int)pass];

    /// <summary>Total time over every kind and pass.</summary>
    public TimeSpan Total
    {
        get
        {
            long t = 0;
            foreach (long x in ticks) t += x;
            return Stopwatch.GetElapsedTime(0, t);
        }
    }

    /// <summary>A markdown table: ms per step for each layer type and pass, with each row's share of the total.</summary>
    public string ToMarkdown()
    {
        var inv = CultureInfo.InvariantCulture;
        int steps = Math.Max(1, Steps);
        double total = Total.TotalMilliseconds / steps;
        var sb = new StringBuilder();
        sb.AppendLine("| layer type | forward ms | backward ms | update ms | total ms | share |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        var sums = new double[Passes];
        foreach (var kind in Enum.GetValues<LayerKind>())
        {
            double row = 0;
            bool any = false;
            var cells = new string[Passes];
            for (int p = 0; p < Passes; p++)
            {
                double ms = Elapsed(kind, (ProfilePass)p).TotalMilliseconds / steps;
                any |= Calls(kind, (ProfilePass)p) > 0;
                cells[p] = Calls(kind, (ProfilePass)p) > 0 ? ms.ToString("F2", inv) : "";
                sums[p] += ms;
                row += ms;
            }

            if (!any) continue;
            sb.Append(inv, $"| {kind} | {cells[0]} | {cells[1]} | {cells[2]} | {row:F2} | {(total > 0 ? 100 * row / total : 0):F1} % |").AppendLine();
        }

        sb.Append(inv, $"| **total** | {sums[0]:F2} | {sums[1]:F2} | {sums[2]:F2} | {total:F2} | 100 % |").AppendLine();
        return sb.ToString();
    }
}
