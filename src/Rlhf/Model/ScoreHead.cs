using System.Numerics.Tensors;

namespace Rlhf.Model;

/// <summary>Where a <see cref="ScoreHead"/> reads the final hidden state.</summary>
public enum HeadPooling
{
    /// <summary>Every token gets scores (PPO value head): output [batch, seq, outputs].</summary>
    PerToken,

    /// <summary>Only the last non-pad token of each row (reward model, classifier): output [batch, outputs].</summary>
    LastToken,
}

/// <summary>
/// A linear head y = h·Wᵀ + b (W [outputs, d], b [outputs]) on the model's final hidden state
/// (<see cref="TransformerModel.FinalHidden"/>). Its weights live in their own small flat buffer (weight then bias)
/// with their own gradients, so a head trains even while the base model is frozen under LoRA.
/// Names follow TRL / HF: value head "v_head.summary.weight|bias", reward and classifier "score.weight|bias".
/// </summary>
public sealed class ScoreHead
{
    public ScoreHead(int modelDim, int outputs, HeadPooling pooling, string prefix)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(modelDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputs);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        ModelDim = modelDim;
        Outputs = outputs;
        Pooling = pooling;
        Tensors = [new ParameterTensor(prefix + ".weight", [outputs, modelDim], 0, outputs * modelDim), new ParameterTensor(prefix + ".bias", [outputs], outputs * modelDim, outputs)];
        Parameters = new float[outputs * (modelDim + 1)];
        Gradients = new float[Parameters.Length];
    }

    /// <summary>TRL's value head: one scalar per token.</summary>
    public static ScoreHead Value(int modelDim) => new(modelDim, 1, HeadPooling.PerToken, "v_head.summary");

    /// <summary>Reward model head: one scalar at the last non-pad token of each row.</summary>
    public static ScoreHead Reward(int modelDim) => new(modelDim, 1, HeadPooling.LastToken, "score");

    /// <summary>Sequence classifier head: <paramref name="classes"/> logits at the last non-pad token of each row.</summary>
    public static ScoreHead Classification(int modelDim, int classes) => new(modelDim, classes, HeadPooling.LastToken, "score");

    public int ModelDim { get; }

    public int Outputs { get; }

    public HeadPooling Pooling { get; }

    /// <summary>Weight [outputs, d] then bias [outputs].</summary>
    public IReadOnlyList<ParameterTensor> Tensors { get; }

    public float[] Parameters { get; }

    public float[] Gradients { get; }

    /// <summary>Copies <paramref name="data"/> into the head tensor named <paramref name="name"/> (e.g. "score.weight"; lengths must match).</summary>
    public void LoadTensor(string name, ReadOnlySpan<float> data)
    {
        foreach (var t in Tensors)
        {
            if (t.Name != name) continue;
            if (data.Length != t.Length) throw new ArgumentException($"tensor '{name}' has {t.Length} elements, got {data.Length}.", nameof(data));
            data.CopyTo(Parameters.AsSpan(t.Offset, t.Length));
            return;
        }

        throw new ArgumentException($"head has no tensor '{name}'.", nameof(name));
    }

    /// <summary>Weights ~ N(0, std²), bias 0.</summary>
    public void InitializeRandom(ulong seed, float std = 0.02f)
    {
        var rng = new Xoshiro256(seed);
        for (int i = 0; i < Outputs * ModelDim; i++) Parameters[i] = (float)(std * rng.NextGaussian());
        Parameters.AsSpan(Outputs * ModelDim).Clear();
    }

    /// <summary>
    /// hidden [b,t,d], mask [b,t] -> scores [b,t,outputs] (PerToken) or [b,outputs] (LastToken):
    /// scores = h·Wᵀ + b. NaN in h propagates. A LastToken row with no real token throws.
    /// </summary>
    public void Forward(ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int batch, int seq, Span<float> scores)
    {
        Check(hidden, mask, batch, seq, scores.Length, nameof(scores));
        int d = ModelDim, c = Outputs;
        var w = Parameters.AsSpan(0, c * d);
        var bias = Parameters.AsSpan(c * d, c);
        int rows = Pooling == HeadPooling.PerToken ? batch * seq : batch;
        for (int r = 0; r < rows; r++)
        {
            var h = hidden.Slice(SourceRow(mask, r, seq) * d, d);
            for (int o = 0; o < c; o++) scores[r * c + o] = TensorPrimitives.Dot(h, w.Slice(o * d, d)) + bias[o];
        }
    }

    /// <summary>dScores (shape of the forward's scores) -> dHidden [b,t,d] (added), weight/bias gradients (added).</summary>
    public void Backward(ReadOnlySpan<float> dScores, ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int batch, int seq, Span<float> dHidden)
    {
        Check(hidden, mask, batch, seq, dScores.Length, nameof(dScores));
        if (dHidden.Length != batch * seq * ModelDim) throw new ArgumentException($"dHidden has {dHidden.Length} elements, needs {batch * seq * ModelDim}.", nameof(dHidden));
        int d = ModelDim, c = Outputs;
        var w = Parameters.AsSpan(0, c * d);
        var dw = Gradients.AsSpan(0, c * d);
        var db = Gradients.AsSpan(c * d, c);
        int rows = Pooling == HeadPooling.PerToken ? batch * seq : batch;
        for (int r = 0; r < rows; r++)
        {
            int src = SourceRow(mask, r, seq);
            var h = hidden.Slice(src * d, d);
            var dh = dHidden.Slice(src * d, d);
            for (int o = 0; o < c; o++)
            {
                float g = dScores[r * c + o];
                if (g == 0f) continue;
                TensorPrimitives.MultiplyAdd(w.Slice(o * d, d), g, dh, dh);
                var dwo = dw.Slice(o * d, d);
                TensorPrimitives.MultiplyAdd(h, g, dwo, dwo);
                db[o] += g;
            }
        }
    }

    /// <summary>Index of the last token with mask ≠ 0 in row <paramref name="row"/>; throws when the row is all padding.</summary>
    public static int LastTokenIndex(ReadOnlySpan<float> mask, int row, int seq)
    {
        for (int t = seq - 1; t >= 0; t--)
        {
            if (mask[row * seq + t] != 0f) return t;
        }

        throw new ArgumentException($"row {row} of the mask has no real token.", nameof(mask));
    }

    private int SourceRow(ReadOnlySpan<float> mask, int r, int seq) =>
        Pooling == HeadPooling.PerToken ? r : r * seq + LastTokenIndex(mask, r, seq);

    private void Check(ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int batch, int seq, int outLength, string outName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seq);
        if (hidden.Length != batch * seq * ModelDim) throw new ArgumentException($"hidden has {hidden.Length} elements, needs {batch * seq * ModelDim}.", nameof(hidden));
        if (mask.Length != batch * seq) throw new ArgumentException($"mask has {mask.Length} elements, needs {batch * seq}.", nameof(mask));
        int need = (Pooling == HeadPooling.PerToken ? batch * seq : batch) * Outputs;
        if (outLength != need) throw new ArgumentException($"{outName} has {outLength} elements, needs {need}.", outName);
    }
}
