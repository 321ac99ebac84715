using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
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
[Config(typeof(WideParameterColumns))]
public unsafe class GemmBenchmarks
{
    private float* a, b, c;

    /// <summary>Engine shapes, named Name_M_N_K_Transposes (enum names print whole in the summary table).</summary>
    public enum GemmShape
    {
        Square_1024_1024_1024_NN,
        Forward_1024_1152_384_NT,
        BackwardDx_1024_384_1536_NN,
        BackwardDw_1536_384_1024_TN,
        LmHead_1024_50257_384_NT,
        Decode_1_50257_384_NT,
    }

    [ParamsAllValues]
    public GemmShape Shape { get; set; }

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

    private static (int M, int N, int K, bool TransposeA, bool TransposeB) Parse(GemmShape shape)
    {
        string[] parts = shape.ToString().Split('_');
        return (int.Parse(parts[1]), int.Parse(parts[2]), int.Parse(parts[3]), parts[4][0] == 'T', parts[4][1] == 'T');
    }

    private static float* Allocate(long length, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(length * sizeof(float)), 64);
        var random = new Random(seed);
        for (long i = 0; i < length; i++) p[i] = (float)(random.NextDouble() * 2 - 1);
        return p;
    }

    /// <summary>Prints the shape names whole (the default truncates parameter values to 20 characters).</summary>
    private sealed class WideParameterColumns : ManualConfig
    {
        public WideParameterColumns() => SummaryStyle = SummaryStyle.Default.WithMaxParameterColumnWidth(40);
    }
}
