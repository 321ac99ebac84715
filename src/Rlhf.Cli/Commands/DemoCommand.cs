using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Rlhf.Demo;
using Rlhf.IO;
using Rlhf.Ppo;
using Rlhf.Reports;

namespace Rlhf.Cli.Commands;

/// <summary>
/// rlhf demo: the whole pipeline offline on an embedded synthetic corpus. Settings come from the defaults (or
/// --quick), then --config FILE, then the options given on the command line; the effective ones land in config.json.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var d = new DemoOptions();
        var output = new Option<string>("--out") { Description = "run directory (default runs/demo-<UTC time>); written complete or not at all" };
        var config = new Option<FileInfo>("--config") { Description = "JSON file of demo settings (names as in a run's config.json); command-line options override it" };
        var quick = new Option<bool>("--quick") { Description = "a shortened run (fewer steps everywhere) for a first look or tests" };
        var force = CommonOptions.Force();
        var quiet = new Option<bool>("--quiet") { Description = "no progress lines, only the summary" };
        var json = CommonOptions.Json();
        var seed = new Option<ulong>("--seed") { Description = "seed of every random choice", DefaultValueFactory = _ => d.Seed };
        var pretrainSteps = new Option<int>("--pretrain-steps") { Description = "pretraining steps (cached per settings)", DefaultValueFactory = _ => d.PretrainSteps };
        var ppoSteps = new Option<int>("--ppo-steps") { Description = "PPO iterations", DefaultValueFactory = _ => d.PpoSteps };
        var targetKl = new Option<float>("--target-kl") { Description = "KL target of the adaptive β controller", DefaultValueFactory = _ => d.TargetKl };
        var lr = new Option<float>("--ppo-lr") { Description = "PPO learning rate (LoRA)", DefaultValueFactory = _ => d.PpoLearningRate };
        var command = new Command("demo", "The whole mission offline in minutes: synthetic corpus → pretrain (cached) → completions → simulated labelers → agreement → pairs → reward model → PPO (LoRA, KL penalty) → before/after toxicity → report.md with plots.")
        {
            output, config, quick, force, quiet, json, seed, pretrainSteps, ppoSteps, targetKl, lr,
        };
        command.SetAction(parse =>
        {
            // Ctrl+C stops at the next step boundary; the pipeline then deletes its temporary run directory.
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                return Execute(parse, cts.Token);
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return command;

        int Execute(ParseResult parse, CancellationToken cancel)
        {
            var o = parse.GetValue(quick) ? DemoOptions.Quick : new DemoOptions();
            if (parse.GetValue(config) is { } file) o = DemoOptions.Load(file.FullName, o);
            if (Given(parse, seed)) o = o with { Seed = parse.GetValue(seed) };
            if (Given(parse, pretrainSteps)) o = o with { PretrainSteps = parse.GetValue(pretrainSteps) };
            if (Given(parse, ppoSteps)) o = o with { PpoSteps = parse.GetValue(ppoSteps) };
            if (Given(parse, targetKl)) o = o with { TargetKl = parse.GetValue(targetKl) };
            if (Given(parse, lr)) o = o with { PpoLearningRate = parse.GetValue(lr) };
            o.Validate();
            string dir = parse.GetValue(output) ?? Path.Combine("runs", "demo-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            bool q = parse.GetValue(quiet), js = parse.GetValue(json);
            if ((Directory.Exists(dir) || File.Exists(dir)) && !parse.GetValue(force)) throw new OutputExistsException(Path.GetFullPath(dir));
            var outw = parse.InvocationConfiguration.Output;
            var total = Stopwatch.StartNew();
            var stageClock = new Dictionary<string, Stopwatch>();
            var result = DemoPipeline.Run(o, dir, parse.GetValue(force), p =>
            {
                if (q || js) return;
                if (!stageClock.TryGetValue(p.Stage, out var sw)) stageClock[p.Stage] = sw = Stopwatch.StartNew();
                string eta = p.Done > 0 && p.Done < p.Total ? string.Create(CultureInfo.InvariantCulture, $" ETA {sw.Elapsed.TotalSeconds / p.Done * (p.Total - p.Done):F0}s") : "";
                outw.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{total.Elapsed.TotalSeconds,6:F1}s] {p.Stage} {p.Done}/{p.Total} {p.Metric}{eta}"));
            }, cancel);
            if (js)
            {
                outw.WriteLine(JsonSerializer.Serialize(new { result.RunDirectory, result.ReportPath, seconds = total.Elapsed.TotalSeconds, result.ToxicityReduction, result.Before, result.After, result.FlaggedLabelers }, PpoRun.Json));
            }
            else
            {
                outw.WriteLine();
                outw.Write(DemoReport.SummaryTable(result));
                outw.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"flagged labelers: {(result.FlaggedLabelers.Count == 0 ? "none" : string.Join(", ", result.FlaggedLabelers))}; reward-model pair accuracy {result.RewardModelAccuracy:P1}; {total.Elapsed.TotalSeconds:F0} s"));
                outw.WriteLine($"report: {result.ReportPath}");
            }

            return CliApp.Success;
        }
    }

    private static bool Given<T>(ParseResult parse, Option<T> option) => parse.GetResult(option) is { Implicit: false };
}
