using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Rlhf.Formats;

/// <summary>
/// A safetensors file opened read-only through a memory map: the header is parsed and validated on open,
/// tensor data is converted to fp32 only when copied out, so a large checkpoint is never held twice.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private readonly byte* basePtr;
    private readonly long dataStart;
    private readonly long dataLength;
    private readonly Dictionary<string, SafetensorsTensorInfo> byName;
    private bool disposed;

    private SafetensorsFile(string path)
    {
        Path = path;
        long length = new FileInfo(path).Length;
        var first8 = new byte[8];
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            fs.ReadAtLeast(first8, 8, throwOnEndOfStream: false);
        }

        int headerLength = SafetensorsHeader.ReadLength(path, first8, length);
        dataStart = 8 + headerLength;
        dataLength = length - dataStart;

        // A zero-length mapping is an error on Linux; such a file (empty header is not valid JSON) fails below anyway.
        map = MemoryMappedFile.CreateFromFile(
            new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read), null, 0, MemoryMappedFileAccess.Read,
            HandleInheritability.None, leaveOpen: false);
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            basePtr = p + view.PointerOffset;
            var header = new ReadOnlySpan<byte>(basePtr + 8, headerLength);
            (var tensors, var metadata) = SafetensorsHeader.Parse(path, header, dataLength);
            Tensors = tensors;
            Metadata = metadata;
            byName = new Dictionary<string, SafetensorsTensorInfo>(tensors.Count, StringComparer.Ordinal);
            foreach (var t in tensors)
            {
                byName[t.Name] = t;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointFormatException">Truncated file, header length beyond the file, bad JSON, unsupported dtype,
    /// data_offsets out of range, overlapping or not matching shape × dtype size (the message names the file and tensor).</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new SafetensorsFile(path);
    }

    public string Path { get; }

    /// <summary>Header entries in the order of the header JSON.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; } = Array.Empty<SafetensorsTensorInfo>();

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();

    public bool Contains(string name) => byName.ContainsKey(name);

    /// <exception cref="CheckpointFormatException">No tensor called <paramref name="name"/>.</exception>
    public SafetensorsTensorInfo GetInfo(string name) =>
        byName.TryGetValue(name, out var info) ? info : throw new CheckpointFormatException(Path, name, $"tensor {name} not found");

    /// <summary>The raw bytes of tensor <paramref name="name"/> inside the map (valid until Dispose).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var info = GetInfo(name);
        long n = info.End - info.Begin;
        if (n > int.MaxValue)
        {
            throw new CheckpointFormatException(Path, name, $"tensor {name} has {n} bytes, more than one span can address");
        }

        return new ReadOnlySpan<byte>(basePtr + dataStart + info.Begin, (int)n);
    }

    /// <summary>
    /// Copies tensor <paramref name="name"/> into <paramref name="destination"/> as fp32, after checking its shape.
    /// Effectively destination[i] = (float)element[i]; F16 and BF16 convert exactly (NaN and ±Inf stay NaN and ±Inf).
    /// </summary>
    /// <exception cref="CheckpointFormatException">Missing tensor, or "file X: tensor Y has shape [a,b], expected [c,d]".</exception>
    /// <exception cref="ArgumentException">destination length differs from the element count.</exception>
    public void CopyTo(string name, ReadOnlySpan<int> expectedShape, Span<float> destination)
    {
        var info = GetInfo(name);
        if (!info.Shape.AsSpan().SequenceEqual(expectedShape))
        {
            throw new CheckpointFormatException(Path, name,
                $"tensor {name} has shape {TensorShape.Format(info.Shape)}, expected {TensorShape.Format(expectedShape)}");
        }

        CopyTo(info, destination);
    }

    /// <summary>Reads tensor <paramref name="name"/> as a new fp32 array (any shape).</summary>
    public float[] ReadFloats(string name)
    {
        var info = GetInfo(name);
        var data = new float[info.ElementCount];
        CopyTo(info, data);
        return data;
    }

    /// <summary>Reads every tensor into memory as fp32, in header order, with the file's metadata.</summary>
    public NamedTensors ReadAll()
    {
        var result = new NamedTensors(Path);
        foreach (var (k, v) in Metadata)
        {
            result.Metadata[k] = v;
        }

        foreach (var info in Tensors)
        {
            var data = new float[info.ElementCount];
            CopyTo(info, data);
            result.Add(info.Name, info.Shape, data);
        }

        return result;
    }

    private void CopyTo(SafetensorsTensorInfo info, Span<float> destination)
    {
        if (destination.Length != info.ElementCount)
        {
            throw new ArgumentException(
                $"file {Path}: tensor {info.Name} has {info.ElementCount} elements, destination has {destination.Length}", nameof(destination));
        }

        var bytes = GetBytes(info.Name);
        DTypeConversion.ToSingle(info.DType, bytes, destination);
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        if (view is not null)
        {
            if (basePtr != null)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view.Dispose();
        }

        map?.Dispose();
    }
}
