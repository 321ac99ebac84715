using System.CommandLine;
using Rlhf.Feedback;
using Rlhf.IO;
using Rlhf.Labeling;

namespace Rlhf.Cli.Commands;

/// <summary>
/// rlhf label: the labeling web app. serve (creates the project from completions.jsonl on first start), add-labeler
/// and organiser-link (print private links), status, export (rankings JSONL for `rlhf pairs`).
/// </summary>
internal static class LabelCommand
{
    private const int DefaultOverlap = 3;

    public static Command Create()
    {
        var command = new Command("label", "Collect rankings from human labelers through a local web page.");
        command.Subcommands.Add(Serve());
        command.Subcommands.Add(AddLabeler());
        command.Subcommands.Add(OrganiserLink());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Export());
        return command;
    }

    private static Option<FileInfo> Db() => new("--db") { Description = "the project's SQLite database file (created by serve)", Required = true };

    private static Option<string> BaseUrl() => new("--base-url")
    {
        Description = "address the links point at (where `rlhf label serve` listens)",
        DefaultValueFactory = _ => LabelingServer.DefaultUrls,
    };

    private static Command Serve()
    {
        var completions = new Option<FileInfo>("--completions") { Description = "completions.jsonl to label (required when the database does not exist yet; new prompts are added later)" };
        var db = Db();
        var urls = new Option<string>("--urls") { Description = "where to listen (';' between several)", DefaultValueFactory = _ => LabelingServer.DefaultUrls };
        var overlap = new Option<int?>("--overlap") { Description = $"k: how many different labelers rank each item (default {DefaultOverlap} for a new project)" };
        var instructions = new Option<FileInfo>("--instructions") { Description = "text file with the instructions labelers see (default: `rlhf instructions`)" };
        var labelers = new Option<string[]>("--labeler") { Description = "add a labeler with this name and print their private link (repeatable)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("serve", "Start the labeling app (creates the project on first start and prints the organiser's link).")
        {
            completions, db, urls, overlap, instructions, labelers,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            string dbPath = parse.GetValue(db)!.FullName;
            int? k = parse.GetValue(overlap);
            if (k is < 1) throw new InvalidInputException($"--overlap must be at least 1, got {k}");
            string? instructionText = null;
            if (parse.GetValue(instructions) is { } file)
            {
                if (!file.Exists) throw new InvalidInputException($"--instructions: {file.FullName}: file not found");
                instructionText = File.ReadAllText(file.FullName);
            }

            var sets = parse.GetValue(completions) is { } c
                ? (c.Exists ? CompletionSets.Load(c.FullName) : throw new InvalidInputException($"--completions: {c.FullName}: file not found"))
                : null;
            LabelingStore store;
            string? organiserToken = null;
            if (LabelingStore.Exists(dbPath))
            {
                store = LabelingStore.Open(dbPath);
                if (sets is not null)
                {
                    int added = store.AddItems(sets.Values);
                    if (added > 0) output.WriteLine($"added {added} new prompt(s) from {parse.GetValue(completions)!.FullName}");
                }

                if (k is not null || instructionText is not null) store.UpdateSettings(instructionText, k);
            }
            else
            {
                if (sets is null) throw new InvalidInputException($"--completions is required to create a new project ({dbPath} does not exist)");
                store = LabelingStore.Create(dbPath, sets.Values, k ?? DefaultOverlap, instructionText, out organiserToken);
                output.WriteLine($"created labeling project {dbPath}: {sets.Count} prompt(s), overlap k = {k ?? DefaultOverlap}");
            }

            var newLabelers = new List<NewLabeler>();
            foreach (string name in parse.GetValue(labelers) ?? [])
            {
                newLabelers.Add(Add(store, name));
            }

            await using var server = await LabelingServer.StartAsync(store, parse.GetValue(urls)!, cancellationToken: cancellationToken);
            string baseUrl = server.Addresses[0];
            if (organiserToken is not null) output.WriteLine($"organiser link (keep it private): {LabelingLinks.Organiser(baseUrl, organiserToken)}");
            else output.WriteLine("organiser link: printed when the project was created; `rlhf label organiser-link` makes a new one");
            foreach (var labeler in newLabelers) output.WriteLine($"labeler {labeler.Name}: {labeler.Link(baseUrl)}");
            foreach (string address in server.Addresses)
            {
                output.WriteLine($"listening on {address}");
                var uri = new Uri(address);
                if (uri.Scheme == "http" && !uri.IsLoopback)
                {
                    parse.InvocationConfiguration.Error.WriteLine($"warning: {address} is reachable from other machines over plain HTTP; links and cookies travel unencrypted (put it behind HTTPS)");
                }
            }

            output.WriteLine("press Ctrl+C to stop");
            output.Flush();
            try
            {
                await server.WaitForShutdownAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }

            return CliApp.Success;
        });
        return command;
    }

    private static Command AddLabeler()
    {
        var db = Db();
        var names = new Argument<string[]>("name") { Description = "labeler name(s): letters, digits, '.', '_', '@', '-'", Arity = ArgumentArity.OneOrMore };
        var baseUrl = BaseUrl();
        var command = new Command("add-labeler", "Add labelers and print each one's private link (shown once; only a hash is stored).") { db, names, baseUrl };
        command.SetAction(parse =>
        {
            var store = LabelingStore.Open(parse.GetValue(db)!.FullName);
            foreach (string name in parse.GetValue(names)!)
            {
                var added = Add(store, name);
                parse.InvocationConfiguration.Output.WriteLine($"labeler {added.Name}: {added.Link(parse.GetValue(baseUrl)!)}");
            }

            return CliApp.Success;
        });
        return command;
    }

    private static Command OrganiserLink()
    {
        var db = Db();
        var baseUrl = BaseUrl();
        var command = new Command("organiser-link", "Make a new organiser link (the old one stops working) and print it.") { db, baseUrl };
        command.SetAction(parse =>
        {
            var store = LabelingStore.Open(parse.GetValue(db)!.FullName);
            parse.InvocationConfiguration.Output.WriteLine($"organiser link (keep it private): {LabelingLinks.Organiser(parse.GetValue(baseUrl)!, store.RotateOrganiserToken())}");
            return CliApp.Success;
        });
        return command;
    }

    private static Command Status()
    {
        var db = Db();
        var json = CommonOptions.Json();
        var command = new Command("status", "Progress per labeler, items short of the overlap, and agreement.") { db, json };
        command.SetAction(parse =>
        {
            var status = LabelingStore.Open(parse.GetValue(db)!.FullName).Status();
            var o = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                o.WriteLine(status.Agreement.ToJson());
                return CliApp.Success;
            }

            o.WriteLine($"{status.Items} item(s), {status.ClosedItems} closed, {status.Rankings} ranking(s); {status.ItemsShortOfOverlap} item(s) short of k = {status.Overlap}");
            o.WriteLine();
            o.WriteLine("| labeler | assigned | ranked | thumbs |");
            o.WriteLine("| --- | ---: | ---: | ---: |");
            foreach (var l in status.Labelers) o.WriteLine($"| {l.Name} | {l.Assigned} | {l.Ranked} | {l.Thumbs} |");
            o.WriteLine();
            o.Write(status.Agreement.ToTable());
            return CliApp.Success;
        });
        return command;
    }

    private static Command Export()
    {
        var db = Db();
        var output = CommonOptions.Output("rankings.jsonl to write (the format `rlhf pairs --rankings` reads)");
        var force = CommonOptions.Force();
        var command = new Command("export", "Write every ranking (and thumb) collected so far as JSONL.") { db, output, force };
        command.SetAction(parse =>
        {
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            var store = LabelingStore.Open(parse.GetValue(db)!.FullName);
            var (rankings, thumbs) = store.Export(outFile.FullName, overwrite: true);
            parse.InvocationConfiguration.Output.WriteLine($"wrote {rankings} ranking(s) and {thumbs} thumb(s) to {outFile.FullName}");
            return CliApp.Success;
        });
        return command;
    }

    private static NewLabeler Add(LabelingStore store, string name)
    {
        try
        {
            return store.AddLabeler(name);
        }
        catch (LabelingException e)
        {
            throw new InvalidInputException($"labeler \"{name}\": {e.Message}");
        }
    }
}
