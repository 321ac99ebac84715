using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Feedback;
using Rlhf.IO;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf agreement: tau-b of each labeler against the others, Krippendorff's alpha, flagged labelers.</summary>
internal static class AgreementCommand
{
    public static Command Create()
    {
        var completions = CommonOptions.Completions();
        var rankings = CommonOptions.Rankings();
        var flagBelow = new Option<double>("--flag-below")
        {
            Description = "flag labelers whose mean tau-b against the others is below this",
            DefaultValueFactory = _ => new AgreementOptions().FlagBelow,
        };
        var command = new Command("agreement", "Report how well labelers agree and flag the ones who disagree.")
        {
            completions, rankings, flagBelow,
        };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            double below = parse.GetValue(flagBelow);
            if (!double.IsFinite(below)) throw new InvalidInputException($"--flag-below must be a finite number (a tau-b in [-1, 1]), got {below}");
            var sets = CompletionSets.Load(parse.GetValue(completions)!.FullName);
            var importer = new RankingImporter(sets);
            importer.Import(parse.GetValue(rankings)!.FullName);
            if (importer.Rejected.Count > 0)
            {
                foreach (var row in importer.Rejected) parse.InvocationConfiguration.Error.WriteLine($"rejected {row}");
                return CliApp.BadInput;
            }

            var report = AgreementReport.Compute(importer.Accepted, new AgreementOptions(below));
            return CliOutput.Of(parse).Result(JsonNode.Parse(report.ToJson())!, report.ToTable());
        });
        return command;
    }
}
