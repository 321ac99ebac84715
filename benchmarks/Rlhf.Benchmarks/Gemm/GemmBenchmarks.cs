using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Rlhf.Kernels;
using KernelGemm = Rlhf.Kernels.Gemm;

namespace Rlhf.Benchmarks.Gemm;

/// <summary>
/// Gemm.Multiply against OpenBLAS cblas_sgemm on the engine's shapes (GPT-2 small-ish: BT = 1024, C = 384), with 1
/// and 2 threads on both sides. Shapes are named M×N×K with the transpose pair: Forward is x[BT, C]·Wᵀ (NT),
/// BackwardDx is dY·W (NN), BackwardDw is dYᵀ·X (TN), LmHead is the 50257-way projection, Decode one token of it.
/// </summary>
/// <remarks>
/// Run with OpenBLAS's AVX-512 kernels, set before the process starts (the setup throws otherwise):
/// <c>OPENBLAS_CORETYPE=SkylakeX dotnet run -c Release --project benchmarks/Rlhf.Benchmarks -- --filter '*GemmBenchmarks*' --job short --inProcess</c>
/// (out-of-process jobs inherit the variable; or pass <c>--envVars OPENBLAS_CORETYPE:SkylakeX</c>).
/// OpenBLAS is the baseline, so the Ratio column reads as our time / OpenBLAS time (goal ≤ 1.33, i.e. ≥ 75%).
/// </remarks>
[MemoryDiagnoser]
public unsafe class GemmBenchmarks
{
    private float* a, b, c;

    [Params(
        "Square 1024x1024x1024 NN",
        "Forward 1024x1152x384 NT",
        "BackwardDx 1024x384x1536 NN",
        "BackwardDw 1536x384x1024 TN",
        "LmHead 1024x50257x384 NT",
        "Decode 1x50257x384 NT")]
    public string Shape { get; set; } = "";

    [Params(1, 2)]
    public int Threads { get; set; }

    private int m, n, k;
    private bool transposeA, transposeB;

    [GlobalSetup]
    public void Setup()
    {
        OpenBlas.RequireSkylakeX();
        (m, n, k, transposeA, transposeB) = Parse(Shape);
        KernelParallelism.MaxThreads = Threads;
        OpenBlas.SetNumThreads(Threads);
        a = Allocate((long)m * k, 1);
        b = Allocate((long)k * n, 2);
        c = Allocate((long)m * n, 3);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(a);
        NativeMemory.AlignedFree(b);
        NativeMemory.AlignedFree(c);
        KernelParallelism.MaxThreads = Environment.ProcessorCount;
    }

    [Benchmark(Baseline = true)]
    public void OpenBlasSgemm() => OpenBlas.Multiply(a, b, c, m, n, k, transposeA, transposeB);

    [Benchmark]
    public void RlhfGemm() => KernelGemm.Multiply(
        new ReadOnlySpan<float>(a, m * k), new ReadOnlySpan<float>(b, k * n), new Span<float>(c, m * n),
        m, n, k, transposeA, transposeB);

    private static (int M, int N, int K, bool TransposeA, bool TransposeB) Parse(string shape)
    {
        string[] parts = shape.Split(' ');
        int[] dims = Array.ConvertAll(parts[1].Split('x'), int.Parse);
        return (dims[0], dims[1], dims[2], parts[2][0] == 'T', parts[2][1] == 'T');
    }

    private static float* Allocate(long length, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(length * sizeof(float)), 64);
        var random = new Random(seed);
        for (long i = 0; i < length; i++) p[i] = (float)(random.NextDouble() * 2 - 1);
        return p;
    }
}
