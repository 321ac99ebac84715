using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Rlhf.Kernels.Ppo;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Native;

/// <summary>
/// The managed half of the C ABI in native/include/rlhf.h: librlhf.so resolves each method by name through hostfxr
/// and forwards to it. Each returns a status (<see cref="NativeStatus"/>) and never lets an exception escape
/// (one crossing an [UnmanagedCallersOnly] frame kills the process); the message stays in <see cref="NativeError"/>.
/// Shapes and semantics are the kernels' own; the C header documents them.
/// </summary>
public static unsafe class NativeExports
{
    /// <summary>rlhf_last_error's source: copies this thread's last message as UTF-8; returns its byte length.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int CopyLastError(byte* buffer, int capacity)
    {
        try
        {
            return NativeError.CopyTo(buffer, capacity);
        }
        catch
        {
            return 0;
        }
    }

    /// <summary>logits [rows, vocabularySize], tokens [rows] → logProbs, entropy, logSumExp [rows]: <see cref="TokenStatistics.Compute"/>.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int TokenStatisticsCompute(
        float* logits, int* tokens, int rows, int vocabularySize, float temperature,
        float* logProbs, float* entropy, float* logSumExp)
    {
        try
        {
            int size = NativeArgs.Shape(rows, nameof(rows), vocabularySize, nameof(vocabularySize), nameof(logits));
            TokenStatistics.Compute(
                NativeArgs.In(logits, size, nameof(logits)), NativeArgs.In(tokens, rows, nameof(tokens)), vocabularySize, temperature,
                NativeArgs.Out(logProbs, rows, nameof(logProbs)), NativeArgs.Out(entropy, rows, nameof(entropy)),
                NativeArgs.Out(logSumExp, rows, nameof(logSumExp)));
            return NativeStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeError.Fail(e);
        }
    }

    /// <summary>policyLogits, referenceLogits [rows, vocabularySize] → kl [rows]: <see cref="KullbackLeibler.FullVocabulary"/>.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int KlFullVocabulary(
        float* policyLogits, float* referenceLogits, int rows, int vocabularySize, float temperature, float* kl)
    {
        try
        {
            int size = NativeArgs.Shape(rows, nameof(rows), vocabularySize, nameof(vocabularySize), nameof(policyLogits));
            KullbackLeibler.FullVocabulary(
                NativeArgs.In(policyLogits, size, nameof(policyLogits)), NativeArgs.In(referenceLogits, size, nameof(referenceLogits)),
                vocabularySize, temperature, NativeArgs.Out(kl, rows, nameof(kl)));
            return NativeStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeError.Fail(e);
        }
    }

    /// <summary>logProbs, referenceLogProbs [count] → kl [count] with Schulman's estimator k1, k2 or k3 (<paramref name="estimator"/>).</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int KlEstimate(int estimator, float* logProbs, float* referenceLogProbs, int count, float* kl)
    {
        try
        {
            NativeArgs.Positive(count, nameof(count));
            var p = NativeArgs.In(logProbs, count, nameof(logProbs));
            var q = NativeArgs.In(referenceLogProbs, count, nameof(referenceLogProbs));
            var destination = NativeArgs.Out(kl, count, nameof(kl));
            switch (estimator)
            {
                case 1: KullbackLeibler.K1(p, q, destination); break;
                case 2: KullbackLeibler.K2(p, q, destination); break;
                case 3: KullbackLeibler.K3(p, q, destination); break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(estimator), estimator, $"estimator must be 1, 2 or 3 (k1, k2, k3); got {estimator}.");
            }

            return NativeStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeError.Fail(e);
        }
    }

    /// <summary>rewards, values, mask [batch, steps] → advantages, returns [batch, steps]: <see cref="Gae.Compute"/>.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int GaeCompute(
        float* rewards, float* values, float* mask, int batch, int steps, float gamma, float lambda,
        float* advantages, float* returns)
    {
        try
        {
            int n = NativeArgs.Shape(batch, nameof(batch), steps, nameof(steps), nameof(rewards));
            Gae.Compute(
                NativeArgs.In(rewards, n, nameof(rewards)), NativeArgs.In(values, n, nameof(values)), NativeArgs.In(mask, n, nameof(mask)),
                NativeArgs.Out(advantages, n, nameof(advantages)), NativeArgs.Out(returns, n, nameof(returns)),
                batch, steps, gamma, lambda);
            return NativeStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeError.Fail(e);
        }
    }

    /// <summary>PPO clipped surrogate over [batch, steps] with its gradient: <see cref="PolicyLoss.Compute"/>; stats may be NULL.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int PolicyLossCompute(
        float* newLogProbs, float* oldLogProbs, float* advantages, float* mask, int batch, int steps,
        float clipRange, float gradientScale, float* gradNewLogProbs, NativePolicyLossStats* stats)
    {
        try
        {
            int n = NativeArgs.Shape(batch, nameof(batch), steps, nameof(steps), nameof(newLogProbs));
            var result = PolicyLoss.Compute(
                NativeArgs.In(newLogProbs, n, nameof(newLogProbs)), NativeArgs.In(oldLogProbs, n, nameof(oldLogProbs)),
                NativeArgs.In(advantages, n, nameof(advantages)), NativeArgs.In(mask, n, nameof(mask)),
                NativeArgs.Out(gradNewLogProbs, n, nameof(gradNewLogProbs)), batch, steps, clipRange, gradientScale);
            if (stats != null)
                *stats = new NativePolicyLossStats(result.Loss, result.ClipFraction, result.ApproxKl, result.MeanRatio, result.ValidCount);
            return NativeStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeError.Fail(e);
        }
    }

    /// <summary>PPO clipped value loss over [batch, steps] with its gradient: <see cref="ValueLoss.Compute"/>; stats may be NULL.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int ValueLossCompute(
        float* values, float* oldValues, float* returns, float* mask, int batch, int steps,
        float clipRange, float gradientScale, float* gradValues, NativeValueLossStats* stats)
    {
        try
        {
            int n = NativeArgs.Shape(batch, nameof(batch), steps, nameof(steps), nameof(values));
            var result = ValueLoss.Compute(
                NativeArgs.In(values, n, nameof(values)), NativeArgs.In(oldValues, n, nameof(oldValues)),
                NativeArgs.In(returns, n, nameof(returns)), NativeArgs.In(mask, n, nameof(mask)),
                NativeArgs.Out(gradValues, n, nameof(gradValues)), batch, steps, clipRange, gradientScale);
            if (stats != null)
                *stats = new NativeValueLossStats(result.Loss, result.ClipFraction, result.MeanSquaredError, result.ValidCount);
            return NativeStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeError.Fail(e);
        }
    }
}

/// <summary>rlhf_policy_loss_stats: four floats then an int32, C layout.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct NativePolicyLossStats(float Loss, float ClipFraction, float ApproxKl, float MeanRatio, int ValidCount);

/// <summary>rlhf_value_loss_stats: three floats then an int32, C layout.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct NativeValueLossStats(float Loss, float ClipFraction, float MeanSquaredError, int ValidCount);
