using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "--layer-split")
{
    Rlhf.Benchmarks.Engine.LayerSplitReport.Run(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "--interleaved")
{
    Rlhf.Benchmarks.Interleaved.InterleavedRatios.Run(args[1..]);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
