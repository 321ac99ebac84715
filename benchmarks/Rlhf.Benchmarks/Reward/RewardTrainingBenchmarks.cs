using BenchmarkDotNet.Attributes;
using Rlhf.Feedback;
using Rlhf.Kernels;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Benchmarks.Reward;

/// <summary>
/// Reward-model training throughput: one optimizer step over 16 pairs (32 rows of up to 128 byte tokens, a
/// 2-layer d=64 GPT-2 trunk), reported per pair (OperationsPerInvoke), beside the work outside the engine for the same
/// 16 pairs: parsing pairs.jsonl, tokenising, and packing the padded batch. Outside share = (Parse + Tokenize + Pack) / Step.
/// </summary>
[MemoryDiagnoser]
public class RewardTrainingBenchmarks
{
    private const int Pairs = 16;
    private RewardTrainer trainer = null!;
    private HeadTrainingStep step = null!;
    private TokenRows encoder = null!;
    private List<PreferencePair> pairs = null!;
    private List<int[]> rows = null!;
    private int[] order = null!, packIndices = null!, tokens = [];
    private float[] mask = [];
    private string pairsFile = "";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        KernelParallelism.MaxThreads = Threads;
        var rng = new Xoshiro256(1);
        string[] words = ["please", "thank", "you", "the", "station", "is", "near", "idiot", "go", "away", "help", "me", "with", "this", "question"];
        string Sentence(int n)
        {
            var w = new string[n];
            for (int i = 0; i < n; i++) w[i] = words[rng.NextUInt64() % (ulong)words.Length];
            return string.Join(' ', w);
        }

        pairs = [];
        for (int i = 0; i < Pairs; i++) pairs.Add(new PreferencePair($"{i}", Sentence(8), "a", Sentence(10 + i), "b", Sentence(14 + i), "", 0));
        pairsFile = Path.Combine(Path.GetTempPath(), $"rlhf-bench-pairs-{Environment.ProcessId}.jsonl");
        PreferencePairs.Write(pairsFile, pairs);
        var options = new RewardModelOptions { MaxLength = 128, BatchSize = Pairs, LearningRate = 1e-4f };
        trainer = new RewardTrainer(RewardTrainer.NewTrunk(TransformerConfig.Gpt2(ByteTokenizer.Size, 128, 64, 2, 4), 1), new ByteTokenizer(), "byte", options);
        trainer.SetData(pairs);
        step = trainer.CreateStepRunner(1_000_000);
        encoder = trainer.Encoder;
        order = [.. Enumerable.Range(0, Pairs)];
        rows = [];
        foreach (var p in pairs)
        {
            rows.Add(encoder.Encode(p.Prompt, p.Chosen));
            rows.Add(encoder.Encode(p.Prompt, p.Rejected));
        }

        packIndices = [.. Enumerable.Range(0, 2 * Pairs)];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        File.Delete(pairsFile);
        double data = trainer.DataTime.TotalSeconds, engine = trainer.EngineTime.TotalSeconds;
        Console.WriteLine($"// reward training, threads {Threads}: packing {data:F3} s vs engine {engine:F3} s inside Step ({100 * data / (data + engine):F2}% outside)");
    }

    /// <summary>Forward of 32 rows, pairwise loss, backward through head and trunk, clipping, AdamW.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public double Step() => trainer.Step(step, order).Loss;

    [Benchmark(OperationsPerInvoke = Pairs)]
    public int Parse() => PreferencePairs.Read(pairsFile).Count;

    [Benchmark(OperationsPerInvoke = Pairs)]
    public int Tokenize()
    {
        int n = 0;
        foreach (var p in pairs) n += encoder.Encode(p.Prompt, p.Chosen).Length + encoder.Encode(p.Prompt, p.Rejected).Length;
        return n;
    }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public int Pack() => TokenRows.Pack(rows, packIndices, PaddingSide.Right, ByteTokenizer.Pad, ref tokens, ref mask);
}
