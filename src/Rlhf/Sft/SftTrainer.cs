using System.Text.Json;
using Rlhf.Cai;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Tokenizers;
using Rlhf.Training;

namespace Rlhf.Sft;

/// <summary>
/// Settings of supervised fine-tuning. <see cref="LoraRank"/> 0 trains every weight; &gt; 0 trains a LoRA adapter.
/// <see cref="Device"/>: "cpu" (the engine's CPU kernels), "cuda" (the first NVIDIA GPU) or "ilgpu-cpu" (the device
/// path on ILGPU's CPU accelerator, for tests and debugging); see <see cref="Rlhf.Compute.CausalLmBackends"/>.
/// </summary>
public sealed record SftOptions(
    int Steps = 100,
    int BatchSize = 4,
    float LearningRate = 1e-4f,
    int WarmupSteps = 0,
    DecayKind Decay = DecayKind.Cosine,
    float MaxGradNorm = 1f,
    float WeightDecay = 0f,
    double HeldOutFraction = 0.1,
    int EvalEvery = 0,
    int LoraRank = 0,
    float LoraAlpha = 16f,
    int MaxSeq = 256,
    ulong Seed = 0,
    string Device = "cpu");

/// <summary>One optimizer step of a run, for progress displays: HeldOutLoss is set on the steps that evaluated it.</summary>
public sealed record SftStepMetrics(int Step, int Steps, float Loss, double? HeldOutLoss);

/// <summary>What a run did: losses at the end and where the model went.</summary>
public sealed record SftResult(int Steps, float LastTrainLoss, double? InitialHeldOutLoss, double? FinalHeldOutLoss, int TrainExamples, int HeldOutExamples, string ModelDirectory, string? AdapterDirectory);

/// <summary>
/// Supervised fine-tuning with the loss on response tokens only (<see cref="SftBatcher"/>), full or LoRA. A seeded
/// shuffle splits off the held-out examples; training cycles through seeded shuffles of the rest. The run folder gets
/// config.json, metrics.jsonl (one line per step, plus held-out evaluations) and model/ (Hugging Face layout; with
/// LoRA the merged model) and, with LoRA, adapter/ (PEFT layout).
/// </summary>
public static class SftTrainer
{
    public static SftResult Run(TransformerModel model, ITokenizer tokenizer, ChatFormat chat, IReadOnlyList<SftExample> examples, SftOptions options, string runDirectory, Action<string>? progress = null, Action<SftStepMetrics>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.Steps, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize, nameof(options));
        if (!(options.HeldOutFraction >= 0 && options.HeldOutFraction < 1)) throw new ArgumentOutOfRangeException(nameof(options), options.HeldOutFraction, "HeldOutFraction must be in [0, 1)");
        if (examples.Count == 0) throw new ArgumentException("no examples", nameof(examples));
        var batcher = new SftBatcher(tokenizer, chat, Math.Min(options.MaxSeq, model.Config.ContextLength));
        var order = Shuffle(examples.Count, options.Seed, 0);
        int heldCount = examples.Count < 2 ? 0 : Math.Min(examples.Count - 1, (int)Math.Ceiling(options.HeldOutFraction * examples.Count));
        var held = order.Take(heldCount).Select(i => examples[i]).ToList();
        var train = order.Skip(heldCount).Select(i => examples[i]).ToList();

        // Opened before any file is written, so a missing GPU fails fast.
        using var backend = options.Device == "cpu" ? null : Rlhf.Compute.CausalLmBackends.Create(options.Device, model.Config);
        Directory.CreateDirectory(runDirectory);
        if (options.LoraRank > 0) model.AttachAdapter(LoraConfig.Default(model.Config.Family, options.LoraRank, options.LoraAlpha), options.Seed);
        var schedule = new LearningRateSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.Decay);
        CausalLmTrainer trainer;
        if (backend is null)
        {
            trainer = new CausalLmTrainer(model, schedule, options.MaxGradNorm, options.WeightDecay);
        }
        else
        {
            backend.UploadParameters(model.Parameters);
            if (model.Adapter is { } a) backend.AttachAdapter(a);
            trainer = new CausalLmTrainer(backend, schedule, options.MaxGradNorm, options.WeightDecay);
        }

        var metrics = new List<string>();
        string metricsPath = Path.Combine(runDirectory, "metrics.jsonl");
        double? initialHeld = held.Count > 0 ? HeldOutLoss(model, backend, batcher, held, options.BatchSize) : null;
        if (initialHeld is double h0) metrics.Add(Json(w => { w.WriteNumber("step", 0); w.WriteNumber("held_out_loss", h0); }));
        double? lastHeld = initialHeld;
        float lastLoss = float.NaN;
        int cursor = 0, epoch = 0;
        var trainOrder = Shuffle(train.Count, options.Seed, 1);
        for (int step = 1; step <= options.Steps; step++)
        {
            var mb = new List<SftExample>(options.BatchSize);
            while (mb.Count < Math.Min(options.BatchSize, train.Count))
            {
                if (cursor == trainOrder.Length)
                {
                    cursor = 0;
                    trainOrder = Shuffle(train.Count, options.Seed, 2 + ++epoch);
                }

                mb.Add(train[trainOrder[cursor++]]);
            }

            var r = trainer.Step([batcher.Batch(mb)]);
            lastLoss = r.Loss;
            bool eval = held.Count > 0 && (step == options.Steps || (options.EvalEvery > 0 && step % options.EvalEvery == 0));
            double? heldLoss = eval ? HeldOutLoss(model, backend, batcher, held, options.BatchSize) : null;
            if (heldLoss.HasValue) lastHeld = heldLoss;
            metrics.Add(Json(w =>
            {
                w.WriteNumber("step", r.Step);
                w.WriteNumber("loss", r.Loss);
                w.WriteNumber("grad_norm", r.GradNorm);
                w.WriteNumber("lr", r.LearningRate);
                if (heldLoss is double hl) w.WriteNumber("held_out_loss", hl);
            }));
            progress?.Invoke($"step {r.Step}/{options.Steps} loss {r.Loss:F4}" + (heldLoss is double x ? $" held-out {x:F4}" : ""));
            onStep?.Invoke(new SftStepMetrics(r.Step, options.Steps, r.Loss, heldLoss));
            AtomicFile.WriteAllText(metricsPath, string.Join("\n", metrics) + "\n");
        }

        if (backend != null)
        {
            // The trained weights come back once, at the end.
            if (model.Adapter is { } trained) backend.DownloadAdapter(trained.Parameters);
            else backend.DownloadParameters(model.Parameters);
        }

        string modelDir = Path.Combine(runDirectory, "model");
        string? adapterDir = null;
        if (model.Adapter is { } adapter)
        {
            adapterDir = Path.Combine(runDirectory, "adapter");
            var tensors = new NamedTensors(adapterDir);
            foreach (var t in adapter.Tensors) tensors.Add(t.Name, t.Shape, adapter.Parameters.AsSpan(t.Offset, t.Length).ToArray());
            PeftLoraAdapter.Write(adapterDir, new LoraAdapterFiles(new LoraAdapterConfig(adapter.Rank, adapter.Config.Alpha, adapter.Config.TargetModules, null), tensors));
            model.MergeAdapter();
        }

        ModelCheckpoint.SaveHf(model, modelDir);
        return new SftResult(options.Steps, lastLoss, initialHeld, lastHeld, train.Count, held.Count, modelDir, adapterDir);
    }

    /// <summary>Mean loss per response token over <paramref name="examples"/> (forward only).</summary>
    public static double HeldOutLoss(TransformerModel model, SftBatcher batcher, IReadOnlyList<SftExample> examples, int batchSize) =>
        HeldOutLoss(model, null, batcher, examples, batchSize);

    /// <summary>As above, on <paramref name="backend"/> when given (its loss call also leaves dLogits, which are never used).</summary>
    private static double HeldOutLoss(TransformerModel model, Rlhf.Compute.ICausalLmBackend? backend, SftBatcher batcher, IReadOnlyList<SftExample> examples, int batchSize)
    {
        double total = 0, tokens = 0;
        int v = model.Config.VocabSize;
        for (int s = 0; s < examples.Count; s += batchSize)
        {
            var b = batcher.Batch(examples.Skip(s).Take(batchSize).ToList());
            int n = b.Batch * b.Seq;
            var targets = new int[n];
            var weights = new float[n];
            CausalLmLoss.ShiftTargets(b.Tokens, b.Mask, b.LossMask, targets, weights, b.Batch, b.Seq);
            double w = 0;
            foreach (var x in weights) w += x;
            if (w == 0) continue;
            if (backend != null)
            {
                backend.Forward(b.Tokens, b.Mask, b.Batch, b.Seq);
                total += backend.CrossEntropy(targets, weights) * w;
            }
            else
            {
                model.Forward(b.Tokens, b.Mask, b.Batch, b.Seq);
                total += CausalLmLoss.Forward(model.Logits, targets, weights, default, n, v) * w;
            }

            tokens += w;
        }

        return tokens == 0 ? 0 : total / tokens;
    }

    private static int[] Shuffle(int n, ulong seed, int round)
    {
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        var rng = new Xoshiro256(PrincipleSampler.StreamSeed(seed, -10, round));
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(rng.NextDouble() * (i + 1));
            (a[i], a[j]) = (a[j], a[i]);
        }

        return a;
    }

    private static string Json(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
