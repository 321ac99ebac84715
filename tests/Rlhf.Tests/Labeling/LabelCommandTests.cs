using Rlhf.Labeling;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Feedback;

namespace Rlhf.Tests.Labeling;

/// <summary>`rlhf label` subcommands other than serve's web part, run as the real binary.</summary>
public class LabelCommandTests
{
    [Test]
    public void AddLabeler_PrintsAPrivateLinkPerName_WhoseTokenSignsIn()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3);
        var run = CliRunner.Run(project.Folder, "label", "add-labeler", "--db", project.DatabasePath, "ana", "bob", "--base-url", "http://127.0.0.1:5123");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Stderr);
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(2));
        Assert.That(lines[0], Does.StartWith("labeler ana: http://127.0.0.1:5123/label#"));
        string anaToken = lines[0][(lines[0].IndexOf('#') + 1)..];
        string bobToken = lines[1][(lines[1].IndexOf('#') + 1)..];
        Assert.That(project.Store.FindLabeler(anaToken)!.Name, Is.EqualTo("ana"));
        Assert.That(project.Store.FindLabeler(bobToken)!.Name, Is.EqualTo("bob"));

        var duplicate = CliRunner.Run(project.Folder, "label", "add-labeler", "--db", project.DatabasePath, "ana");
        Assert.That(duplicate.ExitCode, Is.EqualTo(2));
        Assert.That(duplicate.Stderr, Does.Contain("labeler \"ana\": a labeler named \"ana\" already exists"));
        var badName = CliRunner.Run(project.Folder, "label", "add-labeler", "--db", project.DatabasePath, "<b>");
        Assert.That(badName.ExitCode, Is.EqualTo(2));
        Assert.That(badName.Stderr, Does.Contain("must be 1-64 characters"));
    }

    [Test]
    public void OrganiserLink_ReplacesTheOldToken()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3);
        var run = CliRunner.Run(project.Folder, "label", "organiser-link", "--db", project.DatabasePath);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Stderr);
        string token = run.Stdout.Trim()[(run.Stdout.Trim().IndexOf('#') + 1)..];
        Assert.That(project.Store.OrganiserHash(token), Is.Not.Null);
        Assert.That(project.Store.OrganiserHash(project.OrganiserToken), Is.Null);
    }

    [Test]
    public void BadInvocations_ExitWith2_NamingTheProblem()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3);
        string missingDb = Path.Combine(project.Folder, "new.db");
        var noCompletions = CliRunner.Run(project.Folder, "label", "serve", "--db", missingDb);
        Assert.That(noCompletions.ExitCode, Is.EqualTo(2));
        Assert.That(noCompletions.Stderr, Does.Contain("--completions is required to create a new project"));

        var badOverlap = CliRunner.Run(project.Folder, "label", "serve", "--db", project.DatabasePath, "--overlap", "0");
        Assert.That(badOverlap.ExitCode, Is.EqualTo(2));
        Assert.That(badOverlap.Stderr, Does.Contain("--overlap must be at least 1"));

        var noProject = CliRunner.Run(project.Folder, "label", "export", "--db", missingDb, "--out", "r.jsonl");
        Assert.That(noProject.ExitCode, Is.EqualTo(2));
        Assert.That(noProject.Stderr, Does.Contain("no such database"));

        File.WriteAllText(Path.Combine(project.Folder, "r.jsonl"), "precious");
        var exists = CliRunner.Run(project.Folder, "label", "export", "--db", project.DatabasePath, "--out", "r.jsonl");
        Assert.That(exists.ExitCode, Is.EqualTo(2));
        Assert.That(exists.Stderr, Does.Contain("r.jsonl exists; pass --force"));
        Assert.That(File.ReadAllText(Path.Combine(project.Folder, "r.jsonl")), Is.EqualTo("precious"));
    }

    [Test]
    public void Serve_EmptyCompletions_OrAFolderAsDb_ExitsWith2_NamingIt()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3);
        // A busy port: should the checks be missing, serve fails to listen instead of serving forever.
        using var busy = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        busy.Start();
        string urls = $"http://127.0.0.1:{((System.Net.IPEndPoint)busy.LocalEndpoint).Port}";
        File.WriteAllText(Path.Combine(project.Folder, "empty.jsonl"), "");
        string newDb = Path.Combine(project.Folder, "new.db");
        var empty = CliRunner.Run(project.Folder, "label", "serve", "--completions", "empty.jsonl", "--db", newDb, "--urls", urls);
        Assert.That(empty.ExitCode, Is.EqualTo(2), empty.Stderr);
        Assert.That(empty.Stderr, Does.Contain("--completions").And.Contain("empty.jsonl").And.Contain("no prompts"));
        Assert.That(File.Exists(newDb), Is.False);

        HotHouseFeedback.Write(project.Folder);
        string folder = Directory.CreateDirectory(Path.Combine(project.Folder, "dbdir")).FullName;
        var dir = CliRunner.Run(project.Folder, "label", "serve", "--completions", "completions.jsonl", "--db", folder, "--urls", urls);
        Assert.That(dir.ExitCode, Is.EqualTo(2), dir.Stderr);
        Assert.That(dir.Stderr, Does.Contain("--db").And.Contain(folder).And.Contain("folder"));
        Assert.That(Directory.EnumerateFileSystemEntries(folder), Is.Empty);
        var status = CliRunner.Run(project.Folder, "label", "status", "--db", folder);
        Assert.That(status.ExitCode, Is.EqualTo(2), status.Stderr);
        Assert.That(status.Stderr, Does.Contain("--db").And.Contain(folder));
    }

    [Test]
    public void ServeThatCannotStart_LeavesNoProjectAndNoLabelerBehind()
    {
        // A bad --labeler after a good one, or a port already in use, stopped serve after the project and the first
        // labelers were stored: their links were never shown and the names could not be used again.
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3);
        HotHouseFeedback.Write(project.Folder);
        string newDb = Path.Combine(project.Folder, "new.db");
        var badName = CliRunner.Run(project.Folder, "label", "serve", "--completions", "completions.jsonl", "--db", newDb, "--labeler", "ana", "--labeler", "b<x>");
        Assert.That(badName.ExitCode, Is.EqualTo(2), badName.Stderr);
        Assert.That(badName.Stderr, Does.Contain("--labeler").And.Contain("b<x>"));
        Assert.That(File.Exists(newDb), Is.False, "no project was created");

        using var busy = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        busy.Start();
        int port = ((System.Net.IPEndPoint)busy.LocalEndpoint).Port;
        var busyPort = CliRunner.Run(project.Folder, "label", "serve", "--completions", "completions.jsonl", "--db", newDb, "--labeler", "ana", "--urls", $"http://127.0.0.1:{port}");
        Assert.That(busyPort.ExitCode, Is.EqualTo(2), busyPort.Stderr);
        Assert.That(busyPort.Stderr, Does.Contain("--urls"));
        Assert.That(File.Exists(newDb), Is.False, "the project this run created is removed again");

        var existing = CliRunner.Run(project.Folder, "label", "serve", "--db", project.DatabasePath, "--labeler", "cy", "--urls", $"http://127.0.0.1:{port}");
        Assert.That(existing.ExitCode, Is.EqualTo(2), existing.Stderr);
        Assert.That(project.Store.HasLabeler("cy"), Is.False, "no labeler was added without a link");
    }

    [Test]
    public void Status_PrintsProgressAndAgreement()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3, TutorialExample.Rankings.Select(r => r.Labeler).ToArray());
        foreach (var r in TutorialExample.Rankings)
        {
            var who = project.Store.FindLabeler(project.Tokens[r.Labeler])!;
            project.Store.Claim(who.Id, 5);
            project.Store.SaveRanking(who.Id, project.Store.Assignments(who.Id).Single().ItemId, _ => r.Ranks);
        }

        var run = CliRunner.Run(project.Folder, "label", "status", "--db", project.DatabasePath);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Stderr);
        Assert.That(run.Stdout, Does.Contain("1 item(s), 0 closed, 3 ranking(s); 0 item(s) short of k = 3"));
        Assert.That(run.Stdout, Does.Contain("| labeler3 | 1 | 1 | 0 |"));
        Assert.That(run.Stdout, Does.Match(@"\| labeler3 \| 1 \| 1 \| -?[0-9.]+ \| yes \|"));
    }
}
