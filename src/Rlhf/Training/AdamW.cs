namespace Rlhf.Training;

/// <summary>An update rule over one flat parameter span and its gradient span (swappable for the kernel AdamW).</summary>
public interface IParameterOptimizer
{
    /// <summary>Updates <paramref name="parameters"/> in place from <paramref name="gradients"/> at <paramref name="learningRate"/>.</summary>
    void Step(Span<float> parameters, ReadOnlySpan<float> gradients, float learningRate);

    /// <summary>Forgets the moment estimates and the step count.</summary>
    void Reset();
}

/// <summary>
/// AdamW as torch.optim.AdamW: p ← p − lr·wd·p; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// p ← p − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + eps). Moments are fp32, allocated at the first step.
/// Weight decay applies where <c>decayMask</c> is 1 (every element when it is null); HF's default decays matrices
/// but not biases and norm weights: <see cref="Rlhf.Model.ParameterLayout.WeightDecayMask"/>. NaN gradients propagate.
/// </summary>
public sealed class AdamW : IParameterOptimizer
{
    private readonly float[]? decayMask;
    private float[] m = [], v = [];
    private List<(int Start, int Length, bool Decays)>? segments;

    public AdamW(float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0f, float[]? decayMask = null)
    {
        this.decayMask = decayMask;
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "must be in [0, 1).");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "must be in [0, 1).");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "must be positive.");
        if (!(weightDecay >= 0f)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "must be >= 0.");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
    }

    public float Beta1 { get; }

    public float Beta2 { get; }

    public float Eps { get; }

    public float WeightDecay { get; }

    /// <summary>Steps taken so far (t in the bias corrections).</summary>
    public int StepCount { get; private set; }

    public void Step(Span<float> parameters, ReadOnlySpan<float> gradients, float learningRate)
    {
        if (gradients.Length != parameters.Length) throw new ArgumentException($"gradients has {gradients.Length} elements, parameters {parameters.Length}.", nameof(gradients));
        if (decayMask != null && decayMask.Length != parameters.Length) throw new ArgumentException($"parameters has {parameters.Length} elements, the decay mask {decayMask.Length}.", nameof(parameters));
        if (StepCount == 0 || m.Length != parameters.Length)
        {
            if (StepCount != 0) throw new ArgumentException($"parameters has {parameters.Length} elements, the optimizer state {m.Length}.", nameof(parameters));
            m = new float[parameters.Length];
            v = new float[parameters.Length];
        }

        StepCount++;
        // The update itself is the vectorised kernel; the decay mask only splits the buffer into runs that share a
        // weight decay (matrices vs biases and norm weights), so each run is one kernel call.
        segments ??= Segments(decayMask, parameters.Length);
        foreach (var (start, length, decays) in segments)
        {
            Kernels.Optim.AdamW.Step(parameters.Slice(start, length), gradients.Slice(start, length), m.AsSpan(start, length), v.AsSpan(start, length),
                StepCount, learningRate, Beta1, Beta2, Eps, decays ? WeightDecay : 0.0);
        }
    }

    private static List<(int Start, int Length, bool Decays)> Segments(float[]? mask, int length)
    {
        var runs = new List<(int, int, bool)>();
        if (mask is null)
        {
            runs.Add((0, length, true));
            return runs;
        }

        int begin = 0;
        for (int i = 1; i <= length; i++)
        {
            if (i == length || (mask[i] != 0f) != (mask[begin] != 0f))
            {
                runs.Add((begin, i - begin, mask[begin] != 0f));
                begin = i;
            }
        }

        return runs;
    }

    public void Reset()
    {
        StepCount = 0;
        m = [];
        v = [];
    }
}
