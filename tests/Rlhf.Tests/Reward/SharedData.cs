namespace Rlhf.Tests.Reward;

/// <summary>../shared/data beside the repository root (Acceptance tests only); see its SOURCES.md.</summary>
internal static class SharedData
{
    public static string Path(string relative)
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Engine.sln"))) dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "repository root (Engine.sln) not found above the test directory");
        string path = System.IO.Path.Combine(dir!.Parent!.FullName, "shared", "data", relative);
        Assert.That(File.Exists(path), Is.True, $"acceptance data missing: {path}");
        return path;
    }
}
