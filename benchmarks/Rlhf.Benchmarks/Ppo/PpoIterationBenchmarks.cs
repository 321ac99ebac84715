using BenchmarkDotNet.Attributes;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>
/// One full PPO iteration (rollout + old/reference log-probs and values + reward + 4 epochs of updates) of the GPT-2
/// engine config (6 layers, 384 channels, 6 heads, vocab 50257) with LoRA (rank 8 on c_attn), batch 4 × 16 new
/// tokens, and each phase alone on a fixed rollout. The time split and tokens/s of the last full iteration, and the
/// parameter/optimizer memory with and without LoRA, are printed at cleanup.
/// </summary>
public class PpoIterationBenchmarks
{
    private PpoTrainer trainer = null!;
    private PpoRollout rollout = null!;
    private PpoMetrics? last;

    [GlobalSetup]
    public void Setup()
    {
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
        var full = new TransformerModel(cfg);
        var fullTrainer = new PpoTrainer(full, tok, new KeywordReward("the"), prompts, options with { LoraRank = 0 });
        Console.WriteLine($"// memory with LoRA: {PpoMemory.Measure(trainer)}");
        Console.WriteLine($"// memory full fine-tuning: {PpoMemory.Measure(fullTrainer)}");
    }

    [Benchmark]
    public PpoMetrics Iteration() => last = trainer.Step();

    [Benchmark]
    public PpoRollout Generation() => trainer.Generate();

    [Benchmark]
    public void OldAndReferenceLogProbs() => trainer.ComputeLogProbsAndValues(rollout);

    [Benchmark]
    public PpoMetrics UpdateFourEpochs() => trainer.Update(rollout);

    [GlobalCleanup]
    public void Cleanup()
    {
        if (last is { } m)
        {
            Console.WriteLine($"// last iteration: {m.TokensPerSecond:F0} tok/s; generation {m.GenerationSeconds:F3}s, reference+old {m.ReferenceSeconds:F3}s, " +
                $"reward {m.ScoringSeconds:F4}s, update {m.UpdateSeconds:F3}s");
        }
    }
}
