using System.Runtime.Intrinsics;
using Rlhf.Kernels.Ppo;

namespace Rlhf.Kernels.Optim;

/// <summary>One AdamW step over a flat parameter buffer (PyTorch torch.optim.AdamW, amsgrad = false, maximize = false).</summary>
public static unsafe class AdamW
{
    /// <summary>
    /// Effectively computes, per element, in PyTorch's order:
    /// p ← p·(1 − lr·wd); m ← m·β1 + (1 − β1)·g; v ← v·β2 + (1 − β2)·g²;
    /// p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
    /// Hyperparameters are doubles like PyTorch's Python floats: 1 − β, the bias corrections and lr/(1 − β1^t) are
    /// computed in double and rounded to float once, as PyTorch does (1 − 0.999f would be off by 5e−5 relative).
    /// NaN or ±Inf in a gradient propagate into that element's state (check with <see cref="GradientClipping"/> first).
    /// </summary>
    /// <param name="step">1-based step count t after this update (PyTorch's state["step"]).</param>
    /// <exception cref="ArgumentException">Span lengths differ, step &lt; 1, lr/eps/weightDecay negative or not finite,
    /// β outside [0, 1) (the message names the argument and value).</exception>
    public static void Step(
        Span<float> parameters, ReadOnlySpan<float> gradients, Span<float> firstMoment, Span<float> secondMoment,
        int step, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01)
    {
        int n = parameters.Length;
        PpoArgs.Length(gradients.Length, n, nameof(gradients), "parameters.Length");
        PpoArgs.Length(firstMoment.Length, n, nameof(firstMoment), "parameters.Length");
        PpoArgs.Length(secondMoment.Length, n, nameof(secondMoment), "parameters.Length");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step must be >= 1 (got {step}).");
        Hyper(learningRate, nameof(learningRate));
        Hyper(epsilon, nameof(epsilon));
        Hyper(weightDecay, nameof(weightDecay));
        Beta(beta1, nameof(beta1));
        Beta(beta2, nameof(beta2));
        if (n == 0) return;

        double lr = learningRate;
        var c = new Coefficients
        {
            Decay = (float)(1.0 - lr * weightDecay),
            Beta1 = (float)beta1,
            OneMinusBeta1 = (float)(1.0 - beta1),
            Beta2 = (float)beta2,
            OneMinusBeta2 = (float)(1.0 - beta2),
            NegStepSize = (float)(-lr / (1.0 - Math.Pow(beta1, step))),
            BiasCorrection2Sqrt = (float)Math.Sqrt(1.0 - Math.Pow(beta2, step)),
            Epsilon = (float)epsilon,
        };

        int chunkLength = ChunkRunner.ChunkLength(n, 64 * 1024);
        fixed (float* p = parameters, g = gradients, m = firstMoment, v = secondMoment)
        {
            ChunkRunner.Run(ChunkRunner.ChunkCount(n, chunkLength), n,
                new Body { P = p, G = g, M = m, V = v, Length = n, ChunkLength = chunkLength, C = c });
        }
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

    private struct Coefficients
    {
        public float Decay, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, NegStepSize, BiasCorrection2Sqrt, Epsilon;
    }

    private struct Body : IChunkBody
    {
        public float* P, G, M, V;
        public int Length, ChunkLength;
        public Coefficients C;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            if (Vector512.IsHardwareAccelerated)
            {
                var decay = Vector512.Create(C.Decay);
                var b1 = Vector512.Create(C.Beta1);
                var ob1 = Vector512.Create(C.OneMinusBeta1);
                var b2 = Vector512.Create(C.Beta2);
                var ob2 = Vector512.Create(C.OneMinusBeta2);
                var step = Vector512.Create(C.NegStepSize);
                var bc2 = Vector512.Create(C.BiasCorrection2Sqrt);
                var eps = Vector512.Create(C.Epsilon);
                for (; i + 16 <= end; i += 16)
                {
                    var g = Vector512.Load(G + i);
                    var m = Vector512.FusedMultiplyAdd(ob1, g, Vector512.Load(M + i) * b1);
                    var v = Vector512.FusedMultiplyAdd(ob2, g * g, Vector512.Load(V + i) * b2);
                    m.Store(M + i);
                    v.Store(V + i);
                    var denom = Vector512.Sqrt(v) / bc2 + eps;
                    Vector512.FusedMultiplyAdd(step, m / denom, Vector512.Load(P + i) * decay).Store(P + i);
                }
            }

            for (; i < end; i++)
            {
                float g = G[i];
                float m = MathF.FusedMultiplyAdd(C.OneMinusBeta1, g, M[i] * C.Beta1);
                float v = MathF.FusedMultiplyAdd(C.OneMinusBeta2, g * g, V[i] * C.Beta2);
                M[i] = m;
                V[i] = v;
                float denom = MathF.Sqrt(v) / C.BiasCorrection2Sqrt + C.Epsilon;
                P[i] = MathF.FusedMultiplyAdd(C.NegStepSize, m / denom, P[i] * C.Decay);
            }
        }
    }
}
