namespace Rlhf.Formats;

/// <summary>A named fp32 tensor held in memory: row-major <see cref="Data"/> of <see cref="Shape"/>.</summary>
public sealed record NamedTensor(string Name, int[] Shape, float[] Data)
{
    public long ElementCount => Data.LongLength;
}

/// <summary>A named fp32 tensor to write, viewing memory owned elsewhere (e.g. a slice of a flat parameter buffer).</summary>
public readonly record struct TensorView(string Name, int[] Shape, ReadOnlyMemory<float> Data);
