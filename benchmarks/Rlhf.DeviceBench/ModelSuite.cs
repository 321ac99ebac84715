using System.Globalization;
using Rlhf.Compute;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.DeviceBench;

/// <summary>
/// The transformer on the device: logits, loss and every gradient of a small GPT-2 and Llama-GQA against the CPU
/// <see cref="TransformerModel"/>, then the GPT-2 training step (forward, cross-entropy, backward, AdamW) timed on
/// the device: 124M (12 layers, 768 channels, vocabulary 50257, batch 8×1024) at full scale, a tiny one at small.
/// </summary>
internal static class ModelSuite
{
    public static void Run(KernelDevice device, BenchScale scale, DeviceReport report)
    {
        Parity(device, report, TransformerConfig.Gpt2(vocabSize: 97, contextLength: 32, modelDim: 32, layerCount: 2, headCount: 4), "GPT-2");
        Parity(device, report, TransformerConfig.Llama(vocabSize: 97, contextLength: 32, modelDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, hiddenDim: 48), "Llama-GQA");
        bool full = scale == BenchScale.Full;
        var config = full
            ? TransformerConfig.Gpt2(vocabSize: 50257, contextLength: 1024, modelDim: 768, layerCount: 12, headCount: 12)
            : TransformerConfig.Gpt2(vocabSize: 101, contextLength: 16, modelDim: 32, layerCount: 2, headCount: 2);
        TrainingStep(device, report, config, full ? 8 : 2, full ? 1024 : 16, full ? "GPT-2 124M" : "GPT-2 tiny");
        Decoding(device, report, config, full ? "GPT-2 124M" : "GPT-2 tiny");
    }

    /// <summary>Batch-1 decoding step over a KV cache after a 1/4-context prefill; GB/s counts one read of every weight per token.</summary>
    private static void Decoding(KernelDevice device, DeviceReport report, TransformerConfig config, string name)
    {
        using var dev = new DeviceTransformer(device, config);
        var init = new TransformerModel(config);
        init.InitializeRandom(2);
        dev.UploadParameters(init.Parameters);
        int prefill = Math.Max(1, config.ContextLength / 4);
        using var cache = new DeviceKvCache(dev, 1, config.ContextLength);
        var (tokens, mask, _, _) = Batch(1, prefill, config.VocabSize, leftPad: 0);
        var logits = new float[config.VocabSize];
        dev.ForwardCached(tokens, mask, prefill, cache, logits, lastOnly: true);
        int[] next = [1];
        float[] one = [1f];
        int budget = config.ContextLength - prefill;
        double ms = Stopwatches.MedianMilliseconds(device.Accelerator, () =>
        {
            if (cache.Length == config.ContextLength) return;
            dev.ForwardCached(next, one, 1, cache, logits, lastOnly: true);
        }, warmups: 2, minSeconds: 0.5, maxRuns: Math.Min(50, budget - 2));
        report.AddTiming($"{name} decode step, batch 1 (cache {prefill}+)", ms, (long)init.Parameters.Length * sizeof(float), "GB/s = weights read per token");
    }

    private static void Parity(KernelDevice device, DeviceReport report, TransformerConfig config, string name)
    {
        const int batch = 2, seq = 12;
        int n = batch * seq, v = config.VocabSize;
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(5, std: 0.2f);
        var noise = DeviceArrays.Random(cpu.Parameters.Length, 6, 0.05f);
        for (int i = 0; i < noise.Length; i++) cpu.Parameters[i] += noise[i];
        var (tokens, mask, targets, weights) = Batch(batch, seq, v, leftPad: 3);

        cpu.Forward(tokens, mask, batch, seq);
        var logits = cpu.Logits.ToArray();
        var dLogits = new float[n * v];
        float loss = CausalLmLoss.Forward(logits, targets, weights, dLogits, n, v);
        cpu.ZeroGradients();
        cpu.Backward(dLogits, default);

        using var dev = new DeviceTransformer(device, config);
        dev.UploadParameters(cpu.Parameters);
        dev.Forward(tokens, mask, batch, seq);
        var devLogits = new float[n * v];
        dev.DownloadLogits(devLogits);
        float devLoss = dev.CrossEntropy(targets, weights);
        dev.Backward();
        var grads = new float[cpu.Gradients.Length];
        dev.DownloadGradients(grads);

        report.AddParity($"{name} logits [{n}x{v}]", Errors.MaxScaled(devLogits, logits), 1e-4);
        report.AddParity($"{name} loss", Math.Abs(devLoss - loss) / Math.Abs(loss), 1e-4);
        double worst = 0;
        foreach (var t in cpu.Layout.Tensors)
            worst = Math.Max(worst, Errors.MaxScaled(grads.AsSpan(t.Offset, t.Length), cpu.Gradients.AsSpan(t.Offset, t.Length)));
        report.AddParity($"{name} every gradient ({cpu.Layout.Tensors.Count} tensors)", worst, 1e-4);
    }

    private static void TrainingStep(KernelDevice device, DeviceReport report, TransformerConfig config, int batch, int seq, string name)
    {
        int n = batch * seq;
        using var dev = new DeviceTransformer(device, config);
        var init = new TransformerModel(config);
        init.InitializeRandom(1);
        dev.UploadParameters(init.Parameters);
        var (tokens, mask, targets, weights) = Batch(batch, seq, config.VocabSize, leftPad: 0);
        int step = 0;
        float loss = 0;
        double ms = Stopwatches.MedianMilliseconds(device.Accelerator, () =>
        {
            dev.ZeroGradients();
            dev.Forward(tokens, mask, batch, seq);
            loss = dev.CrossEntropy(targets, weights);
            dev.Backward();
            dev.AdamWStep(++step, 1e-4);
        }, warmups: 1, minSeconds: 1, maxRuns: 10);
        // Model FLOPs: 6·params·tokens for the matrix products plus 6·L·T·d per token for causal attention (fwd + bwd, halved by the mask).
        double flops = 6.0 * init.Parameters.Length * n + 6.0 * config.LayerCount * seq * config.ModelDim * n;
        string note = string.Create(CultureInfo.InvariantCulture, $"batch {batch}x{seq}, {flops / (ms * 1e-3) / 1e12:F2} TFLOP/s model FLOPs, loss {loss:F3}");
        report.AddTiming($"{name} training step (fwd+CE+bwd+AdamW)", ms, 0, note);
    }

    private static (int[] Tokens, float[] Mask, int[] Targets, float[] Weights) Batch(int batch, int seq, int vocab, int leftPad)
    {
        int n = batch * seq;
        var rng = new Random(3);
        var tokens = new int[n];
        var mask = new float[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = rng.Next(vocab);
            mask[i] = i % seq >= leftPad || i / seq != 0 ? 1f : 0f; // row 0 left-padded
        }

        var targets = new int[n];
        var weights = new float[n];
        CausalLmLoss.ShiftTargets(tokens, mask, default, targets, weights, batch, seq);
        return (tokens, mask, targets, weights);
    }
}
