using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Feedback;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf rankings: import and validate labelers' rankings (JSONL/CSV) into one normalised rankings.jsonl.</summary>
internal static class RankingsCommand
{
    public static Command Create()
    {
        var completions = CommonOptions.Completions();
        var inputs = new Option<FileInfo[]>("--input")
        {
            Description = "rankings or thumbs files (.jsonl or .csv; repeat the option for several labelers' files)",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var output = CommonOptions.Output("normalised rankings.jsonl to write");
        var allowRejected = CommonOptions.Flag("--allow-rejected", "write the accepted rows even when some rows were rejected (they are still listed)");
        var force = CommonOptions.Force();
        var command = new Command("rankings", "Import labelers' rankings, validate every row, and write the accepted ones.")
        {
            completions, inputs, output, allowRejected, force,
        };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var o = CliOutput.Of(parse);
            var stderr = parse.InvocationConfiguration.Error;
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            var sets = CompletionSets.Load(parse.GetValue(completions)!.FullName);
            var importer = new RankingImporter(sets);
            foreach (var file in parse.GetValue(inputs)!) importer.Import(file.FullName);
            bool allow = parse.GetValue(allowRejected);
            if (importer.Rejected.Count > 0 && !allow)
            {
                foreach (var row in importer.Rejected) stderr.WriteLine($"rejected {row}");
                stderr.WriteLine(importer.Summary);
                stderr.WriteLine("error: some rows were rejected; fix them or pass --allow-rejected. Nothing was written.");
                return CliApp.BadInput;
            }

            foreach (var row in importer.Rejected) o.Log($"rejected {row}");
            RankingFiles.Write(outFile.FullName, importer.Accepted, sets);
            string? thumbsPath = null;
            if (importer.Thumbs.Count > 0)
            {
                thumbsPath = Path.ChangeExtension(outFile.FullName, ".pairs-from-thumbs.jsonl");
                PreferencePairs.Write(thumbsPath, PairBuilder.FromThumbs(sets, importer.Thumbs));
            }

            var rejected = new JsonArray();
            foreach (var row in importer.Rejected) rejected.Add(row.ToString());
            return o.Result(
                new JsonObject
                {
                    ["output"] = outFile.FullName, ["accepted_rows"] = importer.AcceptedRows, ["rankings"] = importer.Accepted.Count,
                    ["thumbs"] = importer.Thumbs.Count, ["thumbs_pairs"] = thumbsPath, ["rejected"] = rejected,
                },
                importer.Summary + "\n" + (thumbsPath is null ? "" : $"thumbs feedback written as pairs to {thumbsPath}\n") + $"wrote {outFile.FullName}");
        });
        return command;
    }
}
