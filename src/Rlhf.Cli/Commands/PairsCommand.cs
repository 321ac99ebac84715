using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Feedback;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf pairs: rankings → C(n,2) preference pairs per ranking, preferred first.</summary>
internal static class PairsCommand
{
    public static Command Create()
    {
        var completions = CommonOptions.Completions();
        var rankings = CommonOptions.Rankings();
        var output = CommonOptions.Output("pairs.jsonl to write: {prompt, chosen, rejected, labeler, margin} per line");
        var from = new Option<string>("--from")
        {
            Description = "pairs from each labeler's ranking, or from the consensus (mean rank) per prompt",
            DefaultValueFactory = _ => "labelers",
        };
        from.AcceptOnlyFromAmong("labelers", "consensus");
        var force = CommonOptions.Force();
        var command = new Command("pairs", "Turn rankings into pairwise preference data.") { completions, rankings, output, from, force };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            var sets = CompletionSets.Load(parse.GetValue(completions)!.FullName);
            var importer = new RankingImporter(sets);
            importer.Import(parse.GetValue(rankings)!.FullName);
            if (importer.Rejected.Count > 0)
            {
                foreach (var row in importer.Rejected) parse.InvocationConfiguration.Error.WriteLine($"rejected {row}");
                return CliApp.BadInput;
            }

            var pairs = new List<PreferencePair>();
            if (parse.GetValue(from) == "consensus")
            {
                foreach (var consensus in Consensus.PerPrompt(importer.Accepted))
                {
                    pairs.AddRange(PairBuilder.FromConsensus(sets[consensus.PromptId], consensus));
                }
            }
            else
            {
                foreach (var ranking in importer.Accepted) pairs.AddRange(PairBuilder.FromRanking(sets[ranking.PromptId], ranking));
            }

            PreferencePairs.Write(outFile.FullName, pairs);
            return CliOutput.Of(parse).Result(
                new JsonObject { ["pairs"] = pairs.Count, ["rankings"] = importer.Accepted.Count, ["path"] = outFile.FullName },
                $"wrote {pairs.Count} pair(s) from {importer.Accepted.Count} ranking(s) to {outFile.FullName}");
        });
        return command;
    }
}
