using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Rlhf.Kernels.Optim;
using R = Rlhf.Kernels.Device.PpoDeviceReduction;

namespace Rlhf.Kernels.Device;

/// <summary>
/// AdamW and global-norm gradient clipping on an ILGPU accelerator (written for CUDA), with the semantics of
/// <see cref="AdamW"/> and <see cref="GradientClipping"/>. The norm is reduced deterministically (fixed grid, tree per
/// group, partials summed on the host in double, in order). Not safe for concurrent use of one instance.
/// </summary>
public sealed class DeviceOptimKernels : IDisposable
{
    private const int M = R.MaxGroupSize;

    private readonly Accelerator accelerator;
    private readonly R reduction;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs> adamW;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> squares;
    private readonly Action<Index1D, ArrayView<float>, float> scale;

    /// <param name="device">The accelerator to run on.</param>
    /// <param name="groupSize">Threads per group for the norm (0: min(256, the device limit)); rounded down to a power of two.</param>
    public DeviceOptimKernels(KernelDevice device, int groupSize = 0)
    {
        accelerator = device.Accelerator;
        reduction = new R(device, groupSize);
        adamW = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs>(AdamWKernel);
        squares = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(SquaresKernel);
        scale = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ScaleKernel);
    }

    /// <summary>Device version of <see cref="Optim.AdamW.Step"/> (same arguments and PyTorch semantics).</summary>
    public void AdamWStep(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> firstMoment, ArrayView<float> secondMoment,
        int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01)
    {
        long n = parameters.Length;
        Len(gradients, n, nameof(gradients));
        Len(firstMoment, n, nameof(firstMoment));
        Len(secondMoment, n, nameof(secondMoment));
        if (n > int.MaxValue) throw new ArgumentException($"parameters has {n} elements; at most {int.MaxValue} per call.", nameof(parameters));
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step must be >= 1 (got {step}).");
        Hyper(learningRate, nameof(learningRate));
        Hyper(epsilon, nameof(epsilon));
        Hyper(weightDecay, nameof(weightDecay));
        Beta(beta1, nameof(beta1));
        Beta(beta2, nameof(beta2));
        if (n == 0) return;
        adamW((int)n, parameters, gradients, firstMoment, secondMoment, new AdamArgs
        {
            Decay = (float)(1.0 - learningRate * weightDecay),
            Beta1 = (float)beta1,
            OneMinusBeta1 = (float)(1.0 - beta1),
            Beta2 = (float)beta2,
            OneMinusBeta2 = (float)(1.0 - beta2),
            NegStepSize = (float)(-learningRate / (1.0 - Math.Pow(beta1, step))),
            BiasCorrection2Sqrt = (float)Math.Sqrt(1.0 - Math.Pow(beta2, step)),
            Epsilon = (float)epsilon,
        });
        accelerator.Synchronize();
    }

    /// <summary>Device version of <see cref="GradientClipping.GlobalNorm(ReadOnlySpan{float})"/>.</summary>
    public float GlobalNorm(ArrayView<float> gradients)
    {
        if (gradients.Length > int.MaxValue) throw new ArgumentException($"gradients has {gradients.Length} elements; at most {int.MaxValue} per call.", nameof(gradients));
        return (float)Math.Sqrt(SumOfSquares(gradients));
    }

    /// <summary>Device version of <see cref="GradientClipping.ClipByGlobalNorm(Span{float}, float)"/>; returns the norm before clipping.</summary>
    public float ClipByGlobalNorm(ArrayView<float> gradients, float maxNorm)
    {
        if (!(maxNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, $"maxNorm must be > 0 (got {maxNorm}).");
        float norm = GlobalNorm(gradients);
        if (!float.IsFinite(norm))
        {
            var h = reduction.ToHost(gradients);
            for (int i = 0; i < h.Length; i++)
            {
                if (!float.IsFinite(h[i])) throw new ArgumentException($"gradients[{i}] = {h[i]} is not finite; the gradient norm is undefined.", nameof(gradients));
            }
        }

        float coef = maxNorm / (norm + 1e-6f);
        if (coef < 1f)
        {
            scale((int)gradients.Length, gradients, coef);
            accelerator.Synchronize();
        }

        return norm;
    }

    /// <summary>
    /// As <see cref="GradientClipping.ClipByGlobalNorm(ReadOnlySpan{Memory{float}}, float)"/> over two buffers with one
    /// shared norm (e.g. a policy's trained weights and its value head): norm = √(Σ first² + Σ second²), summed in double;
    /// both are scaled by maxNorm/(norm + 1e−6) when that is below 1. Returns the norm before clipping.
    /// </summary>
    /// <exception cref="ArgumentException">A non-finite gradient element (named by buffer and index); nothing is scaled.</exception>
    public float ClipByGlobalNorm(ArrayView<float> first, ArrayView<float> second, float maxNorm)
    {
        if (!(maxNorm > 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, $"maxNorm must be > 0 (got {maxNorm}).");
        float norm = GlobalNorm(first, second);
        if (!float.IsFinite(norm))
        {
            ThrowNonFinite(first, nameof(first));
            ThrowNonFinite(second, nameof(second));
        }

        float coef = maxNorm / (norm + 1e-6f);
        if (coef < 1f)
        {
            if (first.Length > 0) scale((int)first.Length, first, coef);
            if (second.Length > 0) scale((int)second.Length, second, coef);
            accelerator.Synchronize();
        }

        return norm;
    }

    /// <summary>Effectively computes x[i] *= factor (NaN/±Inf propagate); waits for the launch.</summary>
    public void Scale(ArrayView<float> x, float factor)
    {
        if (x.Length > int.MaxValue) throw new ArgumentException($"x has {x.Length} elements; at most {int.MaxValue} per call.", nameof(x));
        if (x.Length == 0) return;
        scale((int)x.Length, x, factor);
        accelerator.Synchronize();
    }

    /// <summary>The L2 norm over the concatenation of two buffers, as <see cref="GradientClipping.GlobalNorm(ReadOnlySpan{Memory{float}})"/>.</summary>
    public float GlobalNorm(ArrayView<float> first, ArrayView<float> second) => (float)Math.Sqrt(SumOfSquares(first) + SumOfSquares(second));

    public void Dispose() => reduction.Dispose();

    private double SumOfSquares(ArrayView<float> x)
    {
        if (x.Length > int.MaxValue) throw new ArgumentException($"a gradient buffer has {x.Length} elements; at most {int.MaxValue} per call.", nameof(x));
        if (x.Length == 0) return 0;
        var config = reduction.Config(x.Length);
        squares(config, x, reduction.Partials, (int)x.Length);
        Span<double> s = stackalloc double[1];
        reduction.Sum(config, 1, s);
        if (!double.IsPositiveInfinity(s[0])) return s[0];

        // The per-thread float sums overflow above ~1.8e19 per element; whether it is that or a ±∞ element, the host
        // answers in double (rare, so a copy is fine): +∞ again only for an infinite element, as the CPU path.
        double sum = 0;
        foreach (float g in reduction.ToHost(x)) sum += (double)g * g;
        return sum;
    }

    private void ThrowNonFinite(ArrayView<float> x, string name)
    {
        var h = reduction.ToHost(x);
        for (int i = 0; i < h.Length; i++)
        {
            if (!float.IsFinite(h[i])) throw new ArgumentException($"{name}[{i}] = {h[i]} is not finite; the gradient norm is undefined.", name);
        }
    }

    private static void Len(ArrayView<float> view, long expected, string name)
    {
        if (view.Length != expected) throw new ArgumentException($"{name} has {view.Length} elements but parameters.Length = {expected}.", name);
    }

    private static void Hyper(double value, string name)
    {
        if (!(value >= 0.0) || !double.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite and >= 0 (got {value}).");
    }

    private static void Beta(double value, string name)
    {
        if (!(value >= 0.0 && value < 1.0)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1) (got {value}).");
    }

    internal struct AdamArgs
    {
        public float Decay, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, NegStepSize, BiasCorrection2Sqrt, Epsilon;
    }

    private static void AdamWKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamArgs a)
    {
        float gi = g[i];
        float mi = a.OneMinusBeta1 * gi + m[i] * a.Beta1;
        float vi = a.OneMinusBeta2 * (gi * gi) + v[i] * a.Beta2;
        m[i] = mi;
        v[i] = vi;
        float denom = XMath.Sqrt(vi) / a.BiasCorrection2Sqrt + a.Epsilon;
        p[i] = a.NegStepSize * (mi / denom) + p[i] * a.Decay;
    }

    private static void SquaresKernel(ArrayView<float> x, ArrayView<float> partials, int n)
    {
        var shared = SharedMemory.Allocate<float>(M);
        int tid = Group.IdxX;
        float sum = 0f;
        for (int i = Grid.IdxX * Group.DimX + tid; i < n; i += Grid.DimX * Group.DimX) sum += x[i] * x[i];
        shared[tid] = sum;
        R.GroupSumAndStore(shared, 1, partials);
    }

    private static void ScaleKernel(Index1D i, ArrayView<float> x, float factor) => x[i] *= factor;
}
