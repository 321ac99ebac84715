using Rlhf.Checkpoints;
using Rlhf.Model;
using Rlhf.Tokenizers;
using Rlhf.Training;

namespace Rlhf.Demo;

/// <summary>
/// Step 2 of the demo: pretrain a tiny GPT-2 on <see cref="CustomerReplyCorpus"/> with the byte tokenizer, one
/// exchange per row (BOS, text, EOS, right-padded), so it learns to answer rudely or politely about equally often.
/// The result is cached as an HF folder under <see cref="CacheRoot"/>/demo-&lt;hash of the settings and the code version&gt;.
/// </summary>
public static class DemoPretraining
{
    /// <summary>$RLHF_CACHE, else $XDG_CACHE_HOME/rlhf, else ~/.cache/rlhf.</summary>
    public static string CacheRoot
    {
        get
        {
            if (Environment.GetEnvironmentVariable("RLHF_CACHE") is { Length: > 0 } own) return own;
            if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) return Path.Combine(xdg, "rlhf");
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rlhf");
        }
    }

    public static string CacheDirectory(DemoOptions options, string? cacheRoot = null) => Path.Combine(cacheRoot ?? CacheRoot, "demo-" + options.PretrainKey());

    /// <summary>
    /// Loads the cached model for <paramref name="options"/>, or pretrains and caches it (written to a temporary
    /// folder renamed into place, so an interrupted run leaves no half-written cache). <paramref name="onStep"/> gets
    /// (step, loss) per optimizer step; <c>cached</c> is true when training was skipped.
    /// </summary>
    public static (TransformerModel Model, bool Cached, List<float> Losses) LoadOrTrain(DemoOptions options, Action<int, float>? onStep = null, string? cacheRoot = null)
    {
        string dir = CacheDirectory(options, cacheRoot);
        if (File.Exists(Path.Combine(dir, "config.json"))) return (ModelCheckpoint.Load(dir), true, []);
        var (model, losses) = Train(options, onStep);
        string temp = dir + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            ModelCheckpoint.SaveHf(model, temp);
            Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
            if (!Directory.Exists(dir)) Directory.Move(temp, dir);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }

        return (model, false, losses);
    }

    public static (TransformerModel Model, List<float> Losses) Train(DemoOptions options, Action<int, float>? onStep = null)
    {
        options.Validate();
        var config = TransformerConfig.Gpt2(ByteTokenizer.Size, options.ContextLength, options.ModelDim, options.Layers, options.Heads);
        var model = new TransformerModel(config);
        model.InitializeRandom(options.Seed ^ 0x9E7A1UL);
        var tok = new ByteTokenizer();
        var corpus = CustomerReplyCorpus.Generate(options.CorpusSize, options.Seed);
        int seq = options.ContextLength, b = options.PretrainBatch;
        var rows = new int[corpus.Count][];
        for (int i = 0; i < corpus.Count; i++)
        {
            var ids = tok.Encode(corpus[i].Text);
            int[] row = [ByteTokenizer.Bos, .. ids, ByteTokenizer.Eos];
            rows[i] = row.Length > seq ? row[..seq] : row;
        }

        var schedule = new LearningRateSchedule(options.PretrainLearningRate, Math.Min(20, options.PretrainSteps / 10), options.PretrainSteps, DecayKind.Cosine);
        var trainer = new CausalLmTrainer(model, schedule, 1f);
        var rng = new SplitMix64(options.Seed ^ 0x5EEDUL);
        var tokens = new int[b * seq];
        var mask = new float[b * seq];
        var losses = new List<float>(options.PretrainSteps);
        for (int step = 0; step < options.PretrainSteps; step++)
        {
            Array.Fill(tokens, ByteTokenizer.Pad);
            Array.Clear(mask);
            for (int r = 0; r < b; r++)
            {
                var row = rows[rng.NextInt(rows.Length)];
                row.CopyTo(tokens, r * seq);
                mask.AsSpan(r * seq, row.Length).Fill(1f);
            }

            var res = trainer.Step([new TokenBatch(tokens, mask, null, b, seq)]);
            losses.Add(res.Loss);
            onStep?.Invoke(step + 1, res.Loss);
        }

        return (model, losses);
    }
}
