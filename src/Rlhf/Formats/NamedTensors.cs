using System.Collections;

namespace Rlhf.Formats;

/// <summary>
/// An ordered collection of named fp32 tensors, as read from or written to a checkpoint.
/// <see cref="Source"/> (the file path, or a caller-chosen label) prefixes every error message.
/// </summary>
public sealed class NamedTensors : IEnumerable<NamedTensor>
{
    private readonly Dictionary<string, NamedTensor> byName = new(StringComparer.Ordinal);
    private readonly List<NamedTensor> ordered = new();

    public NamedTensors(string source = "<memory>")
    {
        Source = source;
    }

    /// <summary>The file the tensors came from, or a label such as "&lt;memory&gt;".</summary>
    public string Source { get; }

    /// <summary>Free-form string metadata (safetensors' <c>__metadata__</c>); empty when there is none.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public int Count => ordered.Count;

    /// <summary>Tensor names in insertion (file) order.</summary>
    public IEnumerable<string> Names
    {
        get
        {
            foreach (var t in ordered)
            {
                yield return t.Name;
            }
        }
    }

    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>Adds a tensor; data.Length must equal the product of shape.</summary>
    /// <exception cref="ArgumentException">Duplicate name, or data length does not match the shape.</exception>
    public void Add(string name, int[] shape, float[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long expected = TensorShape.ElementCount(shape);
        if (expected != data.LongLength)
        {
            throw new ArgumentException(
                $"{Source}: tensor {name} has shape {TensorShape.Format(shape)} ({expected} elements) but {data.LongLength} values", nameof(data));
        }

        if (byName.ContainsKey(name))
        {
            throw new ArgumentException($"{Source}: tensor {name} added twice", nameof(name));
        }

        var tensor = new NamedTensor(name, (int[])shape.Clone(), data);
        byName.Add(name, tensor);
        ordered.Add(tensor);
    }

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="CheckpointFormatException">No such tensor (the message names the source and the tensor).</exception>
    public NamedTensor this[string name] =>
        byName.TryGetValue(name, out var t) ? t : throw new CheckpointFormatException(Source, name, $"tensor {name} not found");

    public bool TryGet(string name, out NamedTensor tensor)
    {
        if (byName.TryGetValue(name, out var t))
        {
            tensor = t;
            return true;
        }

        tensor = null!;
        return false;
    }

    /// <summary>The data of tensor <paramref name="name"/>, after checking that its shape is <paramref name="expectedShape"/>.</summary>
    /// <exception cref="CheckpointFormatException">
    /// Missing tensor, or "file X: tensor Y has shape [a,b], expected [c,d]".
    /// </exception>
    public float[] Get(string name, ReadOnlySpan<int> expectedShape)
    {
        var t = this[name];
        if (!t.Shape.AsSpan().SequenceEqual(expectedShape))
        {
            throw new CheckpointFormatException(Source, name,
                $"tensor {name} has shape {TensorShape.Format(t.Shape)}, expected {TensorShape.Format(expectedShape)}");
        }

        return t.Data;
    }

    public IEnumerator<NamedTensor> GetEnumerator() => ordered.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
