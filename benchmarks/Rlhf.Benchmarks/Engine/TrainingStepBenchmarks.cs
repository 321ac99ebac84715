using BenchmarkDotNet.Attributes;
using Rlhf.Benchmarks.Gemm;
using Rlhf.Kernels;
using Rlhf.Model;
using Rlhf.Training;

namespace Rlhf.Benchmarks.Engine;

/// <summary>
/// One training step (forward + cross-entropy + backward + clipping + AdamW) of the engine issue's models at batch
/// 4 × 256, next to the time OpenBLAS (SkylakeX) needs for the same step's matrix products (the GEMM roofline;
/// goal: step ≤ 2× that, on 2 threads). Forward-only and forward+loss+backward rows split the step.
/// <c>OPENBLAS_CORETYPE=SkylakeX dotnet run -c Release --project benchmarks/Rlhf.Benchmarks -- --filter '*TrainingStep*'</c>
/// </summary>
[MemoryDiagnoser]
public class TrainingStepBenchmarks
{
    private const int Batch = 4, Seq = 256;
    private TransformerModel model = null!;
    private CausalLmTrainer trainer = null!;
    private TokenBatch[] batches = null!;
    private GemmWorkload gemms = null!;

    [ParamsAllValues]
    public EngineModel Model { get; set; }

    [Params(2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        OpenBlas.RequireSkylakeX();
        KernelParallelism.MaxThreads = Threads;
        OpenBlas.SetNumThreads(Threads);
        var config = EngineConfigs.Of(Model);
        model = new TransformerModel(config);
        model.InitializeRandom(seed: 1);
        trainer = new CausalLmTrainer(model, new LearningRateSchedule(3e-4f, 0, 1000, DecayKind.Constant));
        var rng = new Random(2);
        var tokens = new int[Batch * Seq];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.Next(config.VocabSize);
        var mask = Enumerable.Repeat(1f, Batch * Seq).ToArray();
        batches = [new TokenBatch(tokens, mask, null, Batch, Seq)];
        trainer.Step(batches);

        gemms = EngineConfigs.TrainingStepGemms(config, Batch, Seq);
    }

    [GlobalCleanup]
    public void Cleanup() => gemms.Dispose();

    [Benchmark(Baseline = true, Description = "OpenBLAS: the step's GEMMs")]
    public void OpenBlasGemmsOfTheStep() => gemms.RunOpenBlas();

    [Benchmark(Description = "engine: forward")]
    public void Forward() => model.Forward(batches[0].Tokens, batches[0].Mask, Batch, Seq);

    [Benchmark(Description = "engine: training step")]
    public TrainStepResult TrainingStep() => trainer.Step(batches);
}
