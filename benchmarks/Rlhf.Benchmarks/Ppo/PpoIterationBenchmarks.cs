using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Rlhf.Benchmarks.Gemm;
using Rlhf.Kernels;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>
/// One full PPO iteration (rollout + old/reference log-probs and values + reward + 4 epochs of updates) of the GPT-2
/// engine config (6 layers, 384 channels, 6 heads, vocab 50257) with LoRA (rank 8 on c_attn), batch 4 × 16 new
/// tokens, and each phase alone on a fixed rollout, each next to its bound in the same run: generation against
/// reading the weights once per generated token (decode is bandwidth-bound; goal ≤ 2×), the update against OpenBLAS
/// computing the update's matrix products (the GEMM roofline; goal ≤ 2.5×). The time split, tokens/s and the
/// orchestration share (time outside engine and kernel calls; goal &lt; 5 %) of the last full iteration, and the
/// parameter/optimizer memory with and without LoRA, are printed at cleanup.
/// <c>OPENBLAS_CORETYPE=SkylakeX dotnet run -c Release --project benchmarks/Rlhf.Benchmarks -- --filter '*PpoIteration*'</c>
/// </summary>
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class PpoIterationBenchmarks
{
    private PpoTrainer trainer = null!;
    private PpoRollout rollout = null!;
    private PpoMetrics? last;
    private readonly GemmWorkload updateGemms = new();
    private float sink;

    [Params(2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        OpenBlas.RequireSkylakeX();
        KernelParallelism.MaxThreads = Threads;
        OpenBlas.SetNumThreads(Threads);
        var cfg = TransformerConfig.Gpt2(vocabSize: 50257, contextLength: 64, modelDim: 384, layerCount: 6, headCount: 6);
        var model = new TransformerModel(cfg);
        model.InitializeRandom(1);
        var options = new PpoOptions { BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 4, MaxNewTokens = 16, LoraRank = 8, Seed = 1 };
        var tok = new Gpt2Tokenizer();
        string[] prompts = ["The customer asked about the refund and", "Once upon a time there was", "Summarize the dialogue: hello", "The weather today is"];
        trainer = new PpoTrainer(model, tok, new KeywordReward("the"), prompts, options);
        rollout = trainer.Generate();
        trainer.ComputeLogProbsAndValues(rollout);
        trainer.ScoreResponses(rollout);
        trainer.ComputeAdvantages(rollout);

        int steps = options.PpoEpochs * ((options.BatchSize + options.MiniBatchSize - 1) / options.MiniBatchSize);
        PpoUpdateGemms.AddMinibatchStep(updateGemms, cfg, model.Adapter, options.MiniBatchSize, rollout.SequenceLength, rollout.ResponseLength);
        updateGemms.Repeat(steps);
        updateGemms.Allocate();
        var full = new TransformerModel(cfg);
        var fullTrainer = new PpoTrainer(full, tok, new KeywordReward("the"), prompts, options with { LoraRank = 0 });
        Console.WriteLine($"// memory with LoRA: {PpoMemory.Measure(trainer)}");
        Console.WriteLine($"// memory full fine-tuning: {PpoMemory.Measure(fullTrainer)}");
        Console.WriteLine($"// rollout: {rollout.Batch} rows × {rollout.SequenceLength} tokens ({rollout.ResponseLength} new); update: {steps} minibatch steps, {updateGemms.Count} GEMMs");
    }

    [BenchmarkCategory("iteration"), Benchmark(Description = "full iteration")]
    public PpoMetrics Iteration() => last = trainer.Step();

    [BenchmarkCategory("generation"), Benchmark(Baseline = true, Description = "read the weights once per new token")]
    public float ReadWeightsPerToken()
    {
        float s = 0;
        for (int i = 0; i < rollout.ResponseLength; i++)
        {
            s += System.Numerics.Tensors.TensorPrimitives.Sum(trainer.Policy.Parameters);
            s += System.Numerics.Tensors.TensorPrimitives.Sum(trainer.TrainableParameters);
        }

        return sink = s;
    }

    [BenchmarkCategory("generation"), Benchmark(Description = "generation")]
    public PpoRollout Generation() => trainer.Generate();

    [BenchmarkCategory("reference"), Benchmark(Description = "old + reference log-probs, values")]
    public void OldAndReferenceLogProbs() => trainer.ComputeLogProbsAndValues(rollout);

    [BenchmarkCategory("update"), Benchmark(Baseline = true, Description = "OpenBLAS: the update's GEMMs")]
    public void OpenBlasGemmsOfTheUpdate() => updateGemms.RunOpenBlas();

    [BenchmarkCategory("update"), Benchmark(Description = "update, 4 epochs")]
    public PpoMetrics UpdateFourEpochs() => trainer.Update(rollout);

    [GlobalCleanup]
    public void Cleanup()
    {
        updateGemms.Dispose();
        if (last is { } m)
        {
            Console.WriteLine($"// last iteration: {m.IterationSeconds:F3}s, {m.TokensPerSecond:F0} tok/s; generation {m.GenerationSeconds:F3}s, reference+old {m.ReferenceSeconds:F3}s, " +
                $"reward {m.ScoringSeconds:F4}s, update {m.UpdateSeconds:F3}s; orchestration {m.OrchestrationSeconds * 1e3:F1} ms = {100 * m.OrchestrationSeconds / m.IterationSeconds:F2} %");
        }
    }
}
