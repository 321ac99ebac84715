using System.Globalization;
using System.Text;

namespace Rlhf.DeviceBench;

/// <summary>Parity results and timings of one run, written as markdown for benchmarks/README.md.</summary>
internal sealed class DeviceReport(string deviceName)
{
    private readonly List<(string Name, double MaxRelativeError, double Tolerance)> parity = [];
    private readonly List<(string Name, double Milliseconds, double GigabytesPerSecond, string Note)> timings = [];

    public bool AllParityPassed => parity.TrueForAll(p => p.MaxRelativeError <= p.Tolerance);

    public void AddParity(string name, double maxRelativeError, double tolerance)
    {
        parity.Add((name, maxRelativeError, tolerance));
        string verdict = maxRelativeError <= tolerance ? "ok" : "FAIL";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parity {name,-40} max rel err {maxRelativeError:E2} (tol {tolerance:E0}) {verdict}"));
    }

    public void AddTiming(string name, double milliseconds, long bytesMoved, string note = "")
    {
        double gbs = bytesMoved / (milliseconds * 1e-3) / 1e9;
        timings.Add((name, milliseconds, gbs, note));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"time   {name,-40} {milliseconds,10:F3} ms {gbs,8:F1} GB/s {note}"));
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Device: {deviceName}");
        sb.AppendLine();
        sb.AppendLine("| parity check (device vs CPU kernels) | max rel. error | tolerance | result |");
        sb.AppendLine("| --- | ---: | ---: | --- |");
        foreach (var p in parity)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {p.Name} | {p.MaxRelativeError:E2} | {p.Tolerance:E0} | {(p.MaxRelativeError <= p.Tolerance ? "ok" : "FAIL")} |"));
        }

        sb.AppendLine();
        sb.AppendLine("| timing | ms (median) | GB/s | note |");
        sb.AppendLine("| --- | ---: | ---: | --- |");
        foreach (var t in timings)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {t.Name} | {t.Milliseconds:F3} | {t.GigabytesPerSecond:F1} | {t.Note} |"));
        }

        return sb.ToString();
    }
}
