using System.Diagnostics;
using System.Text.Json;
using Rlhf.Demo;

namespace Rlhf.Tests.Demo;

/// <summary>The real rlhf binary: demo's bad options, --config overrides, --force and the existing run directory.</summary>
public class DemoCliTests
{
    private string dir = "";

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("rlhf-demo-cli").FullName;

    [TearDown]
    public void Clean() => Directory.Delete(dir, true);

    private static string Binary()
    {
        var testDir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        string rid = testDir.Name, framework = testDir.Parent!.Name, configuration = testDir.Parent.Parent!.Name;
        var root = testDir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Engine.sln"))) root = root.Parent;
        return Path.Combine(root!.FullName, "src", "Rlhf.Cli", "bin", configuration, framework, rid, "rlhf.dll");
    }

    private static ProcessStartInfo Start(string workingDirectory, string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["RLHF_CACHE"] = DemoPipelineTests.SharedCache;
        info.ArgumentList.Add(Binary());
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }

    private (int Code, string Out, string Err) Run(params string[] args)
    {
        using var p = Process.Start(Start(dir, args))!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(true);
            throw new TimeoutException("rlhf demo did not finish in 3 minutes");
        }

        return (p.ExitCode, so.Result, se.Result);
    }

    private string ShortConfig(int ppoSteps = 2)
    {
        string path = Path.Combine(dir, "demo.json");
        File.WriteAllText(path, JsonSerializer.Serialize(DemoPipelineTests.Short with { PpoSteps = ppoSteps, EvalSamplesPerPrompt = 1 }, DemoOptions.Json));
        return path;
    }

    [TestCase("--ppo-steps", "0", "PpoSteps")]
    [TestCase("--target-kl", "0", "TargetKl")]
    [TestCase("--seed", "minus-one", "--seed")]
    [TestCase("--no-such-option", "1", "--no-such-option")]
    public void BadOptionExitsWith2AndNamesIt(string option, string value, string named)
    {
        var (code, _, err) = Run("demo", option, value, "--out", "r");
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain(named));
        Assert.That(Directory.Exists(Path.Combine(dir, "r")), Is.False);
    }

    [Test]
    public void MissingOrBadConfigExitsWith2NamingTheFile()
    {
        var (code, _, err) = Run("demo", "--config", "nope.json", "--out", "r");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("nope.json"));
        File.WriteAllText(Path.Combine(dir, "bad.json"), "{ \"PpoSteps\": 3,, }");
        (code, _, err) = Run("demo", "--config", "bad.json", "--out", "r");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("bad.json"));
    }

    [Test]
    public void ExistingRunDirectoryNeedsForceAndCommandLineOverridesTheConfig()
    {
        string config = ShortConfig();
        var (code, stdout, err) = Run("demo", "--config", config, "--out", "run");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(stdout, Does.Contain("mean toxicity").And.Contain("report: " + Path.Combine(dir, "run", "report.md")));
        Assert.That(stdout, Does.Not.Contain("ppo 1/"), "progress goes to standard error");
        Assert.That(err, Does.Contain("ppo 1/2"));
        Assert.That(File.ReadAllLines(Path.Combine(dir, "run", "ppo", "metrics.jsonl")), Has.Length.EqualTo(2));

        (code, _, err) = Run("demo", "--config", config, "--out", "run");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--force"));

        (code, stdout, err) = Run("demo", "--config", config, "--out", "run", "--force", "--ppo-steps", "1", "--json", "--quiet");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Is.Empty, "--quiet: no progress");
        using var summary = JsonDocument.Parse(stdout);
        Assert.That(summary.RootElement.GetProperty("ReportPath").GetString(), Is.EqualTo(Path.Combine(dir, "run", "report.md")));
        var effective = JsonSerializer.Deserialize<DemoOptions>(File.ReadAllText(Path.Combine(dir, "run", "config.json")), DemoOptions.Json)!;
        Assert.That(effective.PpoSteps, Is.EqualTo(1), "the command line overrides the config file");
        Assert.That(effective.PretrainSteps, Is.EqualTo(DemoPipelineTests.Short.PretrainSteps));
        Assert.That(File.ReadAllLines(Path.Combine(dir, "run", "ppo", "metrics.jsonl")), Has.Length.EqualTo(1));
        Assert.That(Directory.GetFileSystemEntries(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "demo.json", "run" }));
    }

    [Test]
    public void InterruptedRunLeavesNoPartialOutput()
    {
        string config = ShortConfig(ppoSteps: 200);
        using var p = Process.Start(Start(dir, ["demo", "--config", config, "--out", "run"]))!;
        var so = p.StandardOutput.ReadToEndAsync();
        string? line;
        while ((line = p.StandardError.ReadLine()) != null && !line.StartsWith("ppo 3/", StringComparison.Ordinal))
        {
        }

        Assert.That(line, Is.Not.Null, "the demo reached PPO");
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        var se = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(TimeSpan.FromMinutes(1)), Is.True);
        Assert.That(p.ExitCode, Is.Not.EqualTo(0));
        Assert.That(Directory.GetFileSystemEntries(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "demo.json" }), se.Result + so.Result);
    }
}
