// dotnet tool restore && dotnet cake --target=<Build|Test|Bench|Demo>
var target = Argument("target", "Test");
var configuration = Argument("configuration", "Release");
var benchFilter = Argument("filter", "*");

Task("Build").Does(() =>
{
    DotNetBuild("Engine.sln", new DotNetBuildSettings { Configuration = configuration });
});

Task("Test").IsDependentOn("Build").Does(() =>
{
    DotNetTest("Engine.sln", new DotNetTestSettings
    {
        Configuration = configuration,
        NoBuild = true,
        Filter = "TestCategory!=Acceptance",
    });
});

Task("Bench").IsDependentOn("Build").Does(() =>
{
    // OpenBLAS is a peer in the GEMM suite: force its AVX-512 kernels (the environment's Haswell default is slower).
    var env = new Dictionary<string, string> { ["OPENBLAS_CORETYPE"] = "SkylakeX" };
    DotNetRun("benchmarks/Rlhf.Benchmarks/Rlhf.Benchmarks.csproj",
        new ProcessArgumentBuilder().Append("--filter").AppendQuoted(benchFilter),
        new DotNetRunSettings { Configuration = configuration, NoBuild = true, EnvironmentVariables = env });
});

Task("Demo").IsDependentOn("Build").Does(() =>
{
    var watch = System.Diagnostics.Stopwatch.StartNew();
    DotNetRun("src/Rlhf.Cli/Rlhf.Cli.csproj", new ProcessArgumentBuilder().Append("demo"),
        new DotNetRunSettings { Configuration = configuration, NoBuild = true });
    Information($"demo finished in {watch.Elapsed.TotalSeconds:F1} s");
});

RunTarget(target);
