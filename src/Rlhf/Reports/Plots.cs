using ScottPlot;

namespace Rlhf.Reports;

/// <summary>A named series of (x, y) points for <see cref="Plots.Lines"/>; <paramref name="RightAxis"/> puts it on a second y axis.</summary>
public sealed record PlotSeries(string Name, double[] X, double[] Y, bool RightAxis = false);

/// <summary>PNG charts for run reports (ScottPlot, rendered headless through SkiaSharp).</summary>
public static class Plots
{
    public const int Width = 640;
    public const int Height = 400;

    /// <summary>One line per series; a horizontal dashed line at <paramref name="reference"/> when given.</summary>
    public static void Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, double? reference = null, string? referenceLabel = null, string? rightLabel = null)
    {
        var plt = new Plot();
        foreach (var s in series)
        {
            var sc = plt.Add.Scatter(s.X, s.Y);
            sc.LegendText = s.Name;
            sc.MarkerSize = s.X.Length > 60 ? 0 : 4;
            if (s.RightAxis) sc.Axes.YAxis = plt.Axes.Right;
        }

        if (reference is double r)
        {
            var h = plt.Add.HorizontalLine(r);
            h.LinePattern = LinePattern.Dashed;
            h.LegendText = referenceLabel ?? "";
        }

        if (rightLabel != null) plt.Axes.Right.Label.Text = rightLabel;
        Finish(plt, path, title, xLabel, yLabel, series.Count > 1 || reference != null);
    }

    /// <summary>Side-by-side histograms of two samples over [0, 1] in <paramref name="bins"/> bins (fraction of each sample).</summary>
    public static void Histograms(string path, string title, string xLabel, string nameA, double[] a, string nameB, double[] b, int bins = 10)
    {
        var plt = new Plot();
        double width = 1.0 / bins;
        AddBars(plt, nameA, a, bins, width, -width / 4, Colors.OrangeRed);
        AddBars(plt, nameB, b, bins, width, width / 4, Colors.SteelBlue);
        plt.Axes.SetLimitsX(-0.02, 1.02);
        Finish(plt, path, title, xLabel, "fraction of responses", true);
    }

    /// <summary>One bar per label; bars below <paramref name="threshold"/> are red.</summary>
    public static void Bars(string path, string title, string yLabel, IReadOnlyList<string> labels, IReadOnlyList<double> values, double threshold)
    {
        var plt = new Plot();
        var bars = new List<Bar>();
        var ticks = new Tick[labels.Count];
        for (int i = 0; i < labels.Count; i++)
        {
            double v = double.IsNaN(values[i]) ? 0 : values[i];
            bars.Add(new Bar { Position = i, Value = v, FillColor = v < threshold ? Colors.OrangeRed : Colors.SteelBlue });
            ticks[i] = new Tick(i, labels[i]);
        }

        plt.Add.Bars(bars);
        var h = plt.Add.HorizontalLine(threshold);
        h.LinePattern = LinePattern.Dashed;
        h.LegendText = "flag threshold";
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        Finish(plt, path, title, "labeler", yLabel, true);
    }

    private static void AddBars(Plot plt, string name, double[] data, int bins, double width, double offset, Color color)
    {
        var counts = new double[bins];
        foreach (double x in data) counts[Math.Clamp((int)(x * bins), 0, bins - 1)]++;
        var bars = new List<Bar>();
        for (int i = 0; i < bins; i++)
        {
            bars.Add(new Bar
            {
                Position = (i + 0.5) * width + offset, Value = data.Length == 0 ? 0 : counts[i] / data.Length,
                Size = width / 2, FillColor = color,
            });
        }

        var bp = plt.Add.Bars(bars);
        bp.LegendText = name;
    }

    private static void Finish(Plot plt, string path, string title, string xLabel, string yLabel, bool legend)
    {
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        if (legend) plt.ShowLegend();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // ScottPlot writes the file directly; write a temporary name and rename so a reader never sees half a PNG.
        string temp = path + ".tmp.png";
        plt.SavePng(temp, Width, Height);
        File.Move(temp, path, overwrite: true);
    }
}
