using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Tests.Onnx;

/// <summary>Hand-built inputs for an exported causal LM (no cache): ids, mask, positions, empty past.</summary>
internal sealed class OnnxTestInputs : IDisposable
{
    public List<string> Names { get; } = new();

    public List<OrtValue> Values { get; } = new();

    public static OnnxTestInputs FullSequence(TransformerConfig c, int[] tokens, float[] mask, int b, int t)
    {
        var r = new OnnxTestInputs();
        var ids = new long[b * t];
        var m = new long[b * t];
        var pos = new long[b * t];
        var p = new int[b * t];
        Embedding.PositionsFromMask(mask, p, b, t);
        for (int i = 0; i < b * t; i++) (ids[i], m[i], pos[i]) = (tokens[i], (long)mask[i], p[i]);
        r.Add(OnnxNames.InputIds, OrtValue.CreateTensorValueFromMemory(ids, [b, t]));
        r.Add(OnnxNames.AttentionMask, OrtValue.CreateTensorValueFromMemory(m, [b, t]));
        r.Add(OnnxNames.PositionIds, OrtValue.CreateTensorValueFromMemory(pos, [b, t]));
        for (int l = 0; l < c.LayerCount; l++)
        {
            r.Add(OnnxNames.PastKey(l), OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, [b, c.KvHeadCount, 0, c.HeadDim]));
            r.Add(OnnxNames.PastValue(l), OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, [b, c.KvHeadCount, 0, c.HeadDim]));
        }

        return r;
    }

    public void Add(string name, OrtValue value)
    {
        Names.Add(name);
        Values.Add(value);
    }

    public void Dispose()
    {
        foreach (var v in Values) v.Dispose();
    }
}
