using System.CommandLine;
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
        var allowRejected = new Option<bool>("--allow-rejected") { Description = "write the accepted rows even when some rows were rejected (they are still listed)" };
        var force = CommonOptions.Force();
        var command = new Command("rankings", "Import labelers' rankings, validate every row, and write the accepted ones.")
        {
            completions, inputs, output, allowRejected, force,
        };
        command.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            var sets = CompletionSets.Load(parse.GetValue(completions)!.FullName);
            var importer = new RankingImporter(sets);
            foreach (var file in parse.GetValue(inputs)!) importer.Import(file.FullName);
            foreach (var row in importer.Rejected) stderr.WriteLine($"rejected {row}");
            stdout.WriteLine(importer.Summary);
            if (importer.Rejected.Count > 0 && !parse.GetValue(allowRejected))
            {
                stderr.WriteLine("error: some rows were rejected; fix them or pass --allow-rejected. Nothing was written.");
                return CliApp.BadInput;
            }

            RankingFiles.Write(outFile.FullName, importer.Accepted, sets);
            if (importer.Thumbs.Count > 0)
            {
                string thumbsPath = Path.ChangeExtension(outFile.FullName, ".pairs-from-thumbs.jsonl");
                PreferencePairs.Write(thumbsPath, PairBuilder.FromThumbs(sets, importer.Thumbs));
                stdout.WriteLine($"thumbs feedback written as pairs to {thumbsPath}");
            }

            stdout.WriteLine($"wrote {outFile.FullName}");
            return CliApp.Success;
        });
        return command;
    }
}
