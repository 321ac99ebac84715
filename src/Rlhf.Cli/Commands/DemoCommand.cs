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
        var output = new Option<string>("--out") { Description = "run directory, written complete or not at all", DefaultValueFactory = _ => "runs/demo-<UTC time>" };
        var quick = CommonOptions.Flag("--quick", "a shortened run (fewer steps everywhere) for a first look or tests");
        var force = CommonOptions.Force();
        var seed = new Option<ulong>("--seed") { Description = "seed of every random choice", DefaultValueFactory = _ => d.Seed };
        var pretrainSteps = new Option<int>("--pretrain-steps") { Description = "pretraining steps (cached per settings)", DefaultValueFactory = _ => d.PretrainSteps };
        var ppoSteps = new Option<int>("--ppo-steps") { Description = "PPO iterations", DefaultValueFactory = _ => d.PpoSteps };
        var targetKl = new Option<float>("--target-kl") { Description = "KL target of the adaptive β controller", DefaultValueFactory = _ => d.TargetKl };
        var lr = new Option<float>("--ppo-lr") { Description = "PPO learning rate (LoRA)", DefaultValueFactory = _ => d.PpoLearningRate };
        var command = new Command("demo", "The whole mission offline in minutes: synthetic corpus → pretrain (cached) → completions → simulated labelers → agreement → pairs → reward model → PPO (LoRA, KL penalty) → before/after toxicity → report.md with plots.")
        {
            output, quick, force, seed, pretrainSteps, ppoSteps, targetKl, lr,
        };
        var config = ConfigFile.AddTo(command, typeof(DemoOptions));
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
            if (parse.GetValue(config) is { } file) o = ConfigFile.Load(file.FullName, o, DemoOptions.Json);
            if (Given(parse, seed)) o = o with { Seed = parse.GetValue(seed) };
            if (Given(parse, pretrainSteps)) o = o with { PretrainSteps = parse.GetValue(pretrainSteps) };
            if (Given(parse, ppoSteps)) o = o with { PpoSteps = parse.GetValue(ppoSteps) };
            if (Given(parse, targetKl)) o = o with { TargetKl = parse.GetValue(targetKl) };
            if (Given(parse, lr)) o = o with { PpoLearningRate = parse.GetValue(lr) };
            o.Validate();
            string dir = Given(parse, output) ? parse.GetValue(output)! : Path.Combine("runs", "demo-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            if ((Directory.Exists(dir) || File.Exists(dir)) && !parse.GetValue(force)) throw new OutputExistsException(Path.GetFullPath(dir));
            var cli = CliOutput.Of(parse);
            var total = Stopwatch.StartNew();
            var result = cli.WithProgress(sink => DemoPipeline.Run(o, dir, parse.GetValue(force), p => sink.Report(p.Stage, p.Done, p.Total, p.Metric), cancel));
            return cli.Result(
                new { result.RunDirectory, result.ReportPath, seconds = total.Elapsed.TotalSeconds, result.ToxicityReduction, result.Before, result.After, result.FlaggedLabelers },
                "\n" + DemoReport.SummaryTable(result) + string.Create(CultureInfo.InvariantCulture,
                    $"flagged labelers: {(result.FlaggedLabelers.Count == 0 ? "none" : string.Join(", ", result.FlaggedLabelers))}; reward-model pair accuracy {result.RewardModelAccuracy:P1}; {total.Elapsed.TotalSeconds:F0} s\n") +
                $"report: {result.ReportPath}");
        }
    }

    private static bool Given<T>(ParseResult parse, Option<T> option) => parse.GetResult(option) is { Implicit: false };
}
