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
    /// Bias corrections are computed in double and rounded to float once, as PyTorch does with its Python scalars.
    /// NaN or ±Inf in a gradient propagate into that element's state (check with <see cref="GradientClipping"/> first).
    /// </summary>
    /// <param name="step">1-based step count t after this update (PyTorch's state["step"]).</param>
    /// <exception cref="ArgumentException">Span lengths differ, step &lt; 1, lr/eps/weightDecay negative or not finite,
    /// β outside [0, 1) (the message names the argument and value).</exception>
    public static void Step(
        Span<float> parameters, ReadOnlySpan<float> gradients, Span<float> firstMoment, Span<float> secondMoment,
        int step, float learningRate, float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f, float weightDecay = 0.01f)
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
            Beta1 = beta1,
            OneMinusBeta1 = (float)(1.0 - beta1),
            Beta2 = beta2,
            OneMinusBeta2 = (float)(1.0 - beta2),
            NegStepSize = (float)(-lr / (1.0 - Math.Pow(beta1, step))),
            BiasCorrection2Sqrt = (float)Math.Sqrt(1.0 - Math.Pow(beta2, step)),
            Epsilon = epsilon,
        };

        int chunkLength = ChunkRunner.ChunkLength(n, 64 * 1024);
        fixed (float* p = parameters, g = gradients, m = firstMoment, v = secondMoment)
        {
            ChunkRunner.Run(ChunkRunner.ChunkCount(n, chunkLength), n,
                new Body { P = p, G = g, M = m, V = v, Length = n, ChunkLength = chunkLength, C = c });
        }
    }

    private static void Hyper(float value, string name)
    {
        if (!(value >= 0f) || !float.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite and >= 0 (got {value}).");
    }

    private static void Beta(float value, string name)
    {
        if (!(value >= 0f && value < 1f)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1) (got {value}).");
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
