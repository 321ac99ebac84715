using System.Diagnostics;

namespace Rlhf.Tests.Labeling;

/// <summary>The real `rlhf label serve` running as its own process (the binary built beside the tests).</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process process;

    private ServerProcess(Process process, Uri baseAddress)
    {
        this.process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public bool HasExited => process.HasExited;

    public static ServerProcess Start(string databasePath)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Binary());
        foreach (string a in new[] { "label", "serve", "--db", databasePath, "--urls", "http://127.0.0.1:0" }) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { listening.TrySetException(new InvalidOperationException($"rlhf label serve exited: {output}")); return; }
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("listening on ", StringComparison.Ordinal)) listening.TrySetResult(e.Data["listening on ".Length..]);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!listening.Task.Wait(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"rlhf label serve did not start listening in 60 s: {output}");
        }

        return new ServerProcess(process, new Uri(listening.Task.Result));
    }

    /// <summary>SIGKILL: no graceful shutdown, no flushing, as in a crash or a pulled plug.</summary>
    public void Kill()
    {
        process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        if (!process.HasExited) Kill();
        process.Dispose();
    }

    private static string Binary()
    {
        // tests/Rlhf.Tests/bin/<Configuration>/net10.0/linux-x64/ → src/Rlhf.Cli/bin/<Configuration>/net10.0/linux-x64/rlhf.dll
        var testDir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        string rid = testDir.Name, framework = testDir.Parent!.Name, configuration = testDir.Parent.Parent!.Name;
        var root = testDir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Engine.sln"))) root = root.Parent;
        if (root is null) throw new InvalidOperationException($"no Engine.sln above {testDir.FullName}");
        string dll = Path.Combine(root.FullName, "src", "Rlhf.Cli", "bin", configuration, framework, rid, "rlhf.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"the rlhf binary was not built: {dll}");
    }
}
