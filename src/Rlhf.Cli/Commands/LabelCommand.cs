using System.CommandLine;
using System.Text.Json.Nodes;
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
        var completions = new Option<FileInfo>("--completions") { Description = "completions.jsonl to label (required when the database does not exist yet; new prompts are added later) [default: none]" };
        var db = Db();
        var urls = new Option<string>("--urls") { Description = "where to listen (';' between several)", DefaultValueFactory = _ => LabelingServer.DefaultUrls };
        var overlap = new Option<int?>("--overlap") { Description = $"k: how many different labelers rank each item [default: {DefaultOverlap} for a new project, unchanged for an existing one]" };
        var instructions = new Option<FileInfo>("--instructions") { Description = "text file with the instructions labelers see [default: `rlhf instructions`]" };
        var labelers = new Option<string[]>("--labeler") { Description = "add a labeler with this name and print their private link (repeatable; default: none)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("serve", "Start the labeling app (creates the project on first start and prints the organiser's link).")
        {
            completions, db, urls, overlap, instructions, labelers,
        };
        ConfigFile.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var cli = CliOutput.Of(parse);
            // Human lines are collected and printed once listening; --json prints one object instead, then waits.
            var lines = new List<string>();
            string dbPath = DbPath(parse, db);
            var info = new JsonObject { ["db"] = dbPath };
            int? k = parse.GetValue(overlap);
            if (k is < 1) throw new InvalidInputException($"--overlap must be at least 1, got {k}");
            string? instructionText = null;
            if (parse.GetValue(instructions) is { } file)
            {
                if (!file.Exists) throw new InvalidInputException($"--instructions: {file.FullName}: file not found");
                instructionText = File.ReadAllText(file.FullName);
            }

            // Every --labeler is checked before anything is written: a bad one used to stop the command after the
            // project and the labelers before it were stored, whose links were then never shown.
            string[] names = parse.GetValue(labelers) ?? [];
            foreach (string name in names)
            {
                if (LabelingStore.LabelerNameProblem(name) is { } problem) throw new InvalidInputException($"--labeler: {problem}");
            }

            if (names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new InvalidInputException($"--labeler \"{twice.Key}\" is given twice");

            var sets = parse.GetValue(completions) is { } c
                ? (c.Exists ? CompletionSets.Load(c.FullName) : throw new InvalidInputException($"--completions: {c.FullName}: file not found"))
                : null;
            // An empty file is a mistake (a wrong path or a failed generate-completions), not a project with nothing to rank.
            if (sets is { Count: 0 }) throw new InvalidInputException($"--completions: {parse.GetValue(completions)!.FullName} holds no prompts");
            LabelingStore store;
            string? organiserToken = null;
            if (LabelingStore.Exists(dbPath))
            {
                store = LabelingStore.Open(dbPath);
                if (sets is not null)
                {
                    int added = store.AddItems(sets.Values);
                    info["added_prompts"] = added;
                    if (added > 0) lines.Add($"added {added} new prompt(s) from {parse.GetValue(completions)!.FullName}");
                }

                if (k is not null || instructionText is not null) store.UpdateSettings(instructionText, k);
                foreach (string name in names)
                {
                    if (store.HasLabeler(name)) throw new InvalidInputException($"--labeler: a labeler named \"{name}\" already exists in {dbPath} (`rlhf label add-labeler` adds new ones; links are shown once)");
                }
            }
            else
            {
                if (sets is null) throw new InvalidInputException($"--completions is required to create a new project ({dbPath} does not exist)");
                store = LabelingStore.Create(dbPath, sets.Values, k ?? DefaultOverlap, instructionText, out organiserToken);
                info["created"] = true;
                info["prompts"] = sets.Count;
                info["overlap"] = k ?? DefaultOverlap;
                lines.Add($"created labeling project {dbPath}: {sets.Count} prompt(s), overlap k = {k ?? DefaultOverlap}");
            }

            // Listen first, then add the labelers: a busy port or a bad --urls then leaves no labeler without a link,
            // and a project created by this run is removed again.
            LabelingServer started;
            try
            {
                started = await LabelingServer.StartAsync(store, parse.GetValue(urls)!, cancellationToken: cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                if (organiserToken is not null) DeleteDatabase(dbPath);
                if (e is IOException or FormatException or InvalidOperationException)
                    throw new InvalidInputException($"--urls {parse.GetValue(urls)}: cannot listen there ({e.Message})");
                throw;
            }

            await using var server = started;
            var newLabelers = new List<NewLabeler>();
            foreach (string name in names)
            {
                newLabelers.Add(Add(store, name));
            }

            string baseUrl = server.Addresses[0];
            if (organiserToken is not null)
            {
                info["organiser_link"] = LabelingLinks.Organiser(baseUrl, organiserToken);
                lines.Add($"organiser link (keep it private): {info["organiser_link"]}");
            }
            else
            {
                lines.Add("organiser link: printed when the project was created; `rlhf label organiser-link` makes a new one");
            }

            var labelerLinks = new JsonArray();
            foreach (var labeler in newLabelers)
            {
                labelerLinks.Add(new JsonObject { ["name"] = labeler.Name, ["link"] = labeler.Link(baseUrl) });
                lines.Add($"labeler {labeler.Name}: {labeler.Link(baseUrl)}");
            }

            var listening = new JsonArray();
            foreach (string address in server.Addresses)
            {
                listening.Add(address);
                lines.Add($"listening on {address}");
                var uri = new Uri(address);
                if (uri.Scheme == "http" && !uri.IsLoopback)
                {
                    cli.Warn($"{address} is reachable from other machines over plain HTTP; links and cookies travel unencrypted (put it behind HTTPS)");
                }
            }

            info["labelers"] = labelerLinks;
            info["listening"] = listening;
            lines.Add("press Ctrl+C to stop");
            cli.Result(info, string.Join("\n", lines));
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
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var store = LabelingStore.Open(DbPath(parse, db));
            var links = new JsonArray();
            var text = new List<string>();
            foreach (string name in parse.GetValue(names)!)
            {
                var added = Add(store, name);
                string link = added.Link(parse.GetValue(baseUrl)!);
                links.Add(new JsonObject { ["name"] = added.Name, ["link"] = link });
                text.Add($"labeler {added.Name}: {link}");
            }

            return CliOutput.Of(parse).Result(new JsonObject { ["labelers"] = links }, string.Join("\n", text));
        });
        return command;
    }

    private static Command OrganiserLink()
    {
        var db = Db();
        var baseUrl = BaseUrl();
        var command = new Command("organiser-link", "Make a new organiser link (the old one stops working) and print it.") { db, baseUrl };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var store = LabelingStore.Open(DbPath(parse, db));
            string link = LabelingLinks.Organiser(parse.GetValue(baseUrl)!, store.RotateOrganiserToken());
            return CliOutput.Of(parse).Result(new JsonObject { ["organiser_link"] = link }, $"organiser link (keep it private): {link}");
        });
        return command;
    }

    private static Command Status()
    {
        var db = Db();
        var command = new Command("status", "Progress per labeler, items short of the overlap, and agreement.") { db };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var status = LabelingStore.Open(DbPath(parse, db)).Status();
            var labelerRows = new JsonArray();
            foreach (var l in status.Labelers) labelerRows.Add(new JsonObject { ["name"] = l.Name, ["assigned"] = l.Assigned, ["ranked"] = l.Ranked, ["thumbs"] = l.Thumbs });
            var json = new JsonObject
            {
                ["items"] = status.Items, ["closed_items"] = status.ClosedItems, ["rankings"] = status.Rankings, ["items_short_of_overlap"] = status.ItemsShortOfOverlap,
                ["overlap"] = status.Overlap, ["labelers"] = labelerRows, ["agreement"] = JsonNode.Parse(status.Agreement.ToJson()),
            };
            var o = new StringWriter();
            o.WriteLine($"{status.Items} item(s), {status.ClosedItems} closed, {status.Rankings} ranking(s); {status.ItemsShortOfOverlap} item(s) short of k = {status.Overlap}");
            o.WriteLine();
            o.WriteLine("| labeler | assigned | ranked | thumbs |");
            o.WriteLine("| --- | ---: | ---: | ---: |");
            foreach (var l in status.Labelers) o.WriteLine($"| {l.Name} | {l.Assigned} | {l.Ranked} | {l.Thumbs} |");
            o.WriteLine();
            o.Write(status.Agreement.ToTable());
            return CliOutput.Of(parse).Result(json, o.ToString());
        });
        return command;
    }

    private static Command Export()
    {
        var db = Db();
        var output = CommonOptions.Output("rankings.jsonl to write (the format `rlhf pairs --rankings` reads)");
        var force = CommonOptions.Force();
        var command = new Command("export", "Write every ranking (and thumb) collected so far as JSONL.") { db, output, force };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            var store = LabelingStore.Open(DbPath(parse, db));
            var (rankings, thumbs) = store.Export(outFile.FullName, overwrite: true);
            return CliOutput.Of(parse).Result(new JsonObject { ["output"] = outFile.FullName, ["rankings"] = rankings, ["thumbs"] = thumbs },
                $"wrote {rankings} ranking(s) and {thumbs} thumb(s) to {outFile.FullName}");
        });
        return command;
    }

    /// <summary>
    /// The --db path, checked before SQLite sees it: a folder, or a file in a folder that does not exist, is bad input
    /// naming --db (SQLite only says "Error 14: unable to open database file").
    /// </summary>
    private static string DbPath(ParseResult parse, Option<FileInfo> db)
    {
        string path = parse.GetValue(db)!.FullName;
        if (Directory.Exists(path)) throw new InvalidInputException($"--db {path} is a folder; give the database file's path (e.g. {Path.Combine(path, "labeling.db")})");
        string? folder = Path.GetDirectoryName(path);
        if (folder is not null && !Directory.Exists(folder)) throw new InvalidInputException($"--db {path}: folder {folder} does not exist");
        return path;
    }

    /// <summary>Removes a database this run created (with SQLite's journal files) after it failed to serve it.</summary>
    private static void DeleteDatabase(string path)
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (string file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            if (File.Exists(file)) File.Delete(file);
        }
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
