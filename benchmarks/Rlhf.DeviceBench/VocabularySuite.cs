using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.DeviceBench;

/// <summary>Token statistics, fused backward and full-vocabulary KL: device against CPU, then device timings.</summary>
internal static class VocabularySuite
{
    public static void Run(KernelDevice device, BenchScale scale, DeviceReport report)
    {
        var acc = device.Accelerator;
        int rows = scale.Rows, vocab = scale.Vocab, n = rows * vocab;
        var kernels = new VocabularyDeviceKernels(device);
        float[] logits = DeviceArrays.Random(n, 11, 4f), reference = DeviceArrays.Random(n, 12, 4f);
        var tokens = new int[rows];
        var rng = new Random(13);
        for (int i = 0; i < rows; i++) tokens[i] = rng.Next(vocab);

        using var dLogits = acc.ToDevice(logits);
        using var dWork = acc.Allocate1D<float>(n);
        using var dReference = acc.ToDevice(reference);
        using var dTokens = acc.ToDevice(tokens);
        using var dLogp = acc.Allocate1D<float>(rows);
        using var dEntropy = acc.Allocate1D<float>(rows);
        using var dLse = acc.Allocate1D<float>(rows);
        using var dKl = acc.Allocate1D<float>(rows);
        using var dGradLogp = acc.ToDevice(DeviceArrays.Random(rows, 14));
        using var dGradEntropy = acc.ToDevice(DeviceArrays.Random(rows, 15, 0.1f));
        using var dStatus = acc.Allocate1D<int>(rows);

        float[] logp = new float[rows], entropy = new float[rows], lse = new float[rows], kl = new float[rows];
        TokenStatistics.Compute(logits, tokens, vocab, 1f, logp, entropy, lse);
        kernels.TokenStatistics(dLogits.View, dTokens.View, vocab, 1f, dLogp.View, dEntropy.View, dLse.View, dStatus.View);
        kernels.Synchronize();
        VocabularyDeviceKernels.ThrowIfInvalid(dStatus.GetAsArray1D());
        report.AddParity($"token log-probs [{rows}x{vocab}]", Errors.MaxRelative(dLogp.GetAsArray1D(), logp, 1e-5), 1e-4);
        report.AddParity($"token entropy [{rows}x{vocab}]", Errors.MaxRelative(dEntropy.GetAsArray1D(), entropy, 1e-5), 1e-4);

        var grad = (float[])logits.Clone();
        TokenStatistics.Backward(grad, tokens, vocab, 1f, lse, entropy, dGradLogp.GetAsArray1D(), dGradEntropy.GetAsArray1D());
        dLogits.View.CopyTo(dWork.View);
        kernels.TokenStatisticsBackward(dWork.View, dTokens.View, vocab, 1f, dLse.View, dEntropy.View, dGradLogp.View, dGradEntropy.View);
        kernels.Synchronize();
        report.AddParity($"dlogits (fused backward) [{rows}x{vocab}]", Errors.MaxRelative(dWork.GetAsArray1D(), grad, 1e-6), 1e-4);

        KullbackLeibler.FullVocabulary(logits, reference, vocab, 1f, kl);
        kernels.FullVocabularyKl(dLogits.View, dReference.View, vocab, 1f, dKl.View, dStatus.View);
        kernels.Synchronize();
        report.AddParity($"full-vocabulary KL [{rows}x{vocab}]", Errors.MaxRelative(dKl.GetAsArray1D(), kl, 1e-5), 1e-4);

        long bytes = (long)n * sizeof(float);
        double ms = Stopwatches.MedianMilliseconds(acc, () =>
            kernels.TokenStatistics(dLogits.View, dTokens.View, vocab, 1f, dLogp.View, dEntropy.View, dLse.View, dStatus.View));
        report.AddTiming($"token statistics [{rows}x{vocab}]", ms, bytes, "logits read once");
        ms = Stopwatches.MedianMilliseconds(acc, () =>
            kernels.TokenStatisticsBackward(dWork.View, dTokens.View, vocab, 1f, dLse.View, dEntropy.View, dGradLogp.View, dGradEntropy.View));
        report.AddTiming($"dlogits in place [{rows}x{vocab}]", ms, 2 * bytes, "read + write");
        ms = Stopwatches.MedianMilliseconds(acc, () => kernels.FullVocabularyKl(dLogits.View, dReference.View, vocab, 1f, dKl.View, dStatus.View));
        report.AddTiming($"full-vocabulary KL [{rows}x{vocab}]", ms, 2 * bytes, "both logit buffers read once");
    }
}
