using ILGPU;
using ILGPU.Runtime;

namespace Rlhf.Kernels.Device;

/// <summary>
/// Host side of the vocabulary kernels on a <see cref="KernelDevice"/>: loads each kernel once and launches one
/// group per row. Views are dense, row-major, fp32 (tokens int32), with the same shapes as the CPU kernels in
/// <c>Rlhf.Kernels.Vocabulary</c>. Launches are asynchronous on the accelerator's default stream; device code
/// cannot throw, so invalid rows are reported in an int status view per row: pass it, after synchronizing and
/// copying it back, to <see cref="ThrowIfInvalid"/>.
/// </summary>
public sealed class VocabularyDeviceKernels
{
    private readonly KernelDevice device;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float> tokenStatistics;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> backward;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float> fullKl;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> sampledKl;

    public VocabularyDeviceKernels(KernelDevice device)
    {
        this.device = device;
        var accelerator = device.Accelerator;
        tokenStatistics = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>(
            VocabularyKernelBodies.TokenStatistics);
        backward = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(
            VocabularyKernelBodies.TokenStatisticsBackward);
        fullKl = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>(
            VocabularyKernelBodies.FullVocabularyKl);
        sampledKl = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            VocabularyKernelBodies.SampledKl);
        int limit = Math.Min(device.MaxGroupSize, 256);
        GroupSize = 1;
        while (GroupSize * 2 <= limit) GroupSize *= 2;
    }

    /// <summary>Threads per row: the largest power of two ≤ min(256, the accelerator's group limit).</summary>
    public int GroupSize { get; }

    /// <summary>
    /// logits [N, V], tokens [N] → logProbs, entropy, logSumExp, status [N]; values as
    /// <c>TokenStatistics.Compute</c> (float arithmetic on the device, ~1e-6 relative to the CPU path).
    /// </summary>
    public void TokenStatistics(
        ArrayView<float> logits, ArrayView<int> tokens, int vocabularySize, float temperature,
        ArrayView<float> logProbs, ArrayView<float> entropy, ArrayView<float> logSumExp, ArrayView<int> status)
    {
        int rows = CheckRows(logits.Length, vocabularySize, tokens.Length, nameof(logits));
        CheckLength(logProbs.Length, rows, nameof(logProbs));
        CheckLength(entropy.Length, rows, nameof(entropy));
        CheckLength(logSumExp.Length, rows, nameof(logSumExp));
        CheckLength(status.Length, rows, nameof(status));
        float invT = Vocabulary.VocabularyChecks.InverseTemperature(temperature);
        if (rows == 0) return;
        tokenStatistics(new KernelConfig(rows, GroupSize), logits, tokens, logProbs, entropy, logSumExp, status, vocabularySize, invT);
    }

    /// <summary>In place: logits [N, V] → dLoss/dlogits, as <c>TokenStatistics.Backward</c> (gradEntropy may be zeros).</summary>
    public void TokenStatisticsBackward(
        ArrayView<float> logits, ArrayView<int> tokens, int vocabularySize, float temperature,
        ArrayView<float> logSumExp, ArrayView<float> entropy, ArrayView<float> gradLogProbs, ArrayView<float> gradEntropy)
    {
        int rows = CheckRows(logits.Length, vocabularySize, tokens.Length, nameof(logits));
        CheckLength(logSumExp.Length, rows, nameof(logSumExp));
        CheckLength(entropy.Length, rows, nameof(entropy));
        CheckLength(gradLogProbs.Length, rows, nameof(gradLogProbs));
        CheckLength(gradEntropy.Length, rows, nameof(gradEntropy));
        float invT = Vocabulary.VocabularyChecks.InverseTemperature(temperature);
        if (rows == 0) return;
        backward(new KernelConfig(rows, GroupSize), logits, tokens, logSumExp, entropy, gradLogProbs, gradEntropy, vocabularySize, invT);
    }

    /// <summary>policy, reference [N, V] → kl, status [N], as <c>KullbackLeibler.FullVocabulary</c>.</summary>
    public void FullVocabularyKl(
        ArrayView<float> policyLogits, ArrayView<float> referenceLogits, int vocabularySize, float temperature,
        ArrayView<float> kl, ArrayView<int> status)
    {
        int rows = CheckRows(policyLogits.Length, vocabularySize, kl.Length, nameof(policyLogits));
        CheckRows(referenceLogits.Length, vocabularySize, kl.Length, nameof(referenceLogits));
        CheckLength(status.Length, rows, nameof(status));
        float invT = Vocabulary.VocabularyChecks.InverseTemperature(temperature);
        if (rows == 0) return;
        fullKl(new KernelConfig(rows, GroupSize), policyLogits, referenceLogits, kl, status, vocabularySize, invT);
    }

    /// <summary>logProbs, referenceLogProbs [N] → k1, k2, k3 [N], as <c>KullbackLeibler.K1/K2/K3</c>.</summary>
    public void SampledKl(
        ArrayView<float> logProbs, ArrayView<float> referenceLogProbs, ArrayView<float> k1, ArrayView<float> k2, ArrayView<float> k3)
    {
        int n = (int)logProbs.Length;
        CheckLength(referenceLogProbs.Length, n, nameof(referenceLogProbs));
        CheckLength(k1.Length, n, nameof(k1));
        CheckLength(k2.Length, n, nameof(k2));
        CheckLength(k3.Length, n, nameof(k3));
        if (n == 0) return;
        sampledKl(n, logProbs, referenceLogProbs, k1, k2, k3);
    }

    /// <summary>Waits for the launched kernels.</summary>
    public void Synchronize() => device.Accelerator.Synchronize();

    /// <summary>
    /// Throws the CPU path's <see cref="ArgumentException"/> for the first invalid row in a status array copied back
    /// from <see cref="TokenStatistics"/> (argument names logits/tokens) or <see cref="FullVocabularyKl"/>
    /// (policyLogits/referenceLogits; pass <paramref name="pair"/> = true).
    /// </summary>
    public static void ThrowIfInvalid(ReadOnlySpan<int> status, bool pair = false)
    {
        string first = pair ? "policyLogits" : "logits", second = pair ? "referenceLogits" : "logits";
        for (int row = 0; row < status.Length; row++)
        {
            int code = status[row];
            if (code == 0) continue;
            throw code switch
            {
                VocabularyKernelBodies.AllBanned => new ArgumentException($"{first} row {row} is -Infinity at every index: no token has probability > 0.", first),
                VocabularyKernelBodies.ReferenceAllBanned => new ArgumentException($"{second} row {row} is -Infinity at every index: no token has probability > 0.", second),
                VocabularyKernelBodies.TokenOutOfRange => new ArgumentOutOfRangeException("tokens", $"tokens[{row}] is outside the vocabulary."),
                > 0 => new ArgumentException($"{first}[{row}, {code - 1}] is NaN or +Infinity: logits must not be.", first),
                _ => new ArgumentException($"{second}[{row}, {-code - 1}] is NaN or +Infinity: logits must not be.", second),
            };
        }
    }

    private static int CheckRows(long logitsLength, int vocabularySize, long rows, string name)
    {
        if (vocabularySize <= 0)
            throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, "vocabularySize must be positive.");
        if (rows * vocabularySize != logitsLength)
            throw new ArgumentException($"{name} has {logitsLength} elements, expected rows ({rows}) × vocabularySize ({vocabularySize}).", name);
        return checked((int)rows);
    }

    private static void CheckLength(long length, int expected, string name)
    {
        if (length != expected)
            throw new ArgumentException($"{name} has {length} elements, expected {expected} (one per row).", name);
    }
}
