using System.Diagnostics;

namespace Rlhf.Tests.Cli;

/// <summary>Runs the real rlhf binary (built beside the tests, same configuration) and captures what it prints.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    private static readonly Lazy<string> Binary = new(() =>
    {
        // tests/Rlhf.Tests/bin/<Configuration>/net10.0/linux-x64/ → src/Rlhf.Cli/bin/<Configuration>/net10.0/linux-x64/rlhf.dll
        var testDir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        string rid = testDir.Name, framework = testDir.Parent!.Name, configuration = testDir.Parent.Parent!.Name;
        var root = testDir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Engine.sln"))) root = root.Parent;
        if (root is null) throw new InvalidOperationException($"no Engine.sln above {testDir.FullName}");
        string dll = Path.Combine(root.FullName, "src", "Rlhf.Cli", "bin", configuration, framework, rid, "rlhf.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"the rlhf binary was not built: {dll}");
    });

    /// <summary>rlhf.dll, for tests that drive a long-running command themselves.</summary>
    public static string BinaryPath => Binary.Value;

    public static Result Run(string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Binary.Value);
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"rlhf {string.Join(' ', args)} did not finish in 5 minutes");
        }

        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
