using System.Buffers.Binary;
using System.Text.Json;

namespace Rlhf.Formats;

/// <summary>
/// Parses and validates a safetensors header: u64 little-endian length N, then N bytes of JSON
/// {"__metadata__": {str: str}?, NAME: {"dtype", "shape", "data_offsets": [begin, end]}}.
/// </summary>
internal static class SafetensorsHeader
{
    // Upstream refuses headers above 100 MB; a larger length means a corrupt or foreign file.
    internal const long MaxHeaderBytes = 100_000_000;

    /// <summary>Reads N from the first 8 bytes and checks that 8 + N fits in a file of <paramref name="fileLength"/> bytes.</summary>
    internal static int ReadLength(string file, ReadOnlySpan<byte> first8, long fileLength)
    {
        if (fileLength < 8)
        {
            throw new CheckpointFormatException(file, null, $"truncated: {fileLength} bytes, a safetensors file starts with an 8-byte header length");
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(first8);
        if (n > (ulong)(fileLength - 8))
        {
            throw new CheckpointFormatException(file, null, $"header length {n} is beyond the end of the file ({fileLength} bytes)");
        }

        if (n > MaxHeaderBytes)
        {
            throw new CheckpointFormatException(file, null, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        }

        return (int)n;
    }

    /// <summary>Parses the JSON header and checks every entry against a data section of <paramref name="dataLength"/> bytes.</summary>
    internal static (List<SafetensorsTensorInfo> Tensors, Dictionary<string, string> Metadata) Parse(
        string file, ReadOnlySpan<byte> json, long dataLength)
    {
        var tensors = new List<SafetensorsTensorInfo>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(file, null, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(file, null, $"header is a JSON {doc.RootElement.ValueKind}, expected an object");
            }

            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    ReadMetadata(file, entry.Value, metadata);
                    continue;
                }

                var info = ReadEntry(file, entry.Name, entry.Value, dataLength);
                if (!seen.Add(info.Name))
                {
                    throw new CheckpointFormatException(file, info.Name, $"tensor {info.Name} appears twice in the header");
                }

                tensors.Add(info);
            }
        }

        CheckNoOverlap(file, tensors, dataLength);
        return (tensors, metadata);
    }

    private static void ReadMetadata(string file, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointFormatException(file, "__metadata__", $"__metadata__ is a JSON {value.ValueKind}, expected an object of strings");
        }

        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
            {
                throw new CheckpointFormatException(file, "__metadata__", $"__metadata__ value '{m.Name}' is a JSON {m.Value.ValueKind}, expected a string");
            }

            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static SafetensorsTensorInfo ReadEntry(string file, string name, JsonElement value, long dataLength)
    {
        CheckpointFormatException Bad(string what) => new(file, name, $"tensor {name}: {what}");

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Bad($"entry is a JSON {value.ValueKind}, expected an object");
        }

        if (!value.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
        {
            throw Bad("missing string field 'dtype'");
        }

        string dtypeText = dtypeEl.GetString()!;
        SafetensorsDType dtype = dtypeText switch
        {
            "F32" => SafetensorsDType.F32,
            "F16" => SafetensorsDType.F16,
            "BF16" => SafetensorsDType.BF16,
            _ => throw Bad($"unsupported dtype '{dtypeText}' (supported: F32, F16, BF16)"),
        };

        if (!value.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
        {
            throw Bad("missing array field 'shape'");
        }

        var shape = new int[shapeEl.GetArrayLength()];
        int d = 0;
        foreach (var dim in shapeEl.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt32(out int v) || v < 0)
            {
                throw Bad($"shape dimension {d} is '{dim}', expected a non-negative int32");
            }

            shape[d++] = v;
        }

        if (!value.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2
            || !offEl[0].TryGetInt64(out long begin) || !offEl[1].TryGetInt64(out long end))
        {
            throw Bad("missing field 'data_offsets' = [begin, end] (two integers)");
        }

        if (begin < 0 || end < begin || end > dataLength)
        {
            throw Bad($"data_offsets [{begin},{end}] out of range of the {dataLength}-byte data section");
        }

        long count;
        try
        {
            count = TensorShape.ElementCount(shape);
        }
        catch (OverflowException)
        {
            throw Bad($"shape {TensorShape.Format(shape)} has too many elements");
        }

        int size = SafetensorsTensorInfo.ElementSize(dtype);
        if (count > (end - begin) / size || count * size != end - begin)
        {
            throw Bad($"data_offsets [{begin},{end}] hold {end - begin} bytes, but shape {TensorShape.Format(shape)} of {dtypeText} needs {(count > long.MaxValue / size ? "more" : (count * size).ToString())}");
        }

        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    /// <summary>
    /// Tensors may not overlap, and, as in the reference reader (safetensors' Metadata::validate and its
    /// MetadataIncompleteBuffer check), together they must cover the data section exactly: a byte no tensor claims,
    /// between tensors or after the last one, means the header and the data disagree (a damaged or spliced file).
    /// </summary>
    private static void CheckNoOverlap(string file, List<SafetensorsTensorInfo> tensors, long dataLength)
    {
        var byBegin = tensors.ToArray();
        Array.Sort(byBegin, (a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        // Compare each tensor with the non-empty one reaching furthest so far, not just its sorted neighbour: an empty
        // tensor sorted between two overlapping ones would otherwise hide the overlap.
        SafetensorsTensorInfo? furthest = null;
        foreach (var cur in byBegin)
        {
            // Empty tensors occupy no bytes and cannot overlap anything.
            if (cur.End <= cur.Begin) continue;
            if (furthest is { } prev && cur.Begin < prev.End)
            {
                throw new CheckpointFormatException(file, cur.Name,
                    $"tensor {cur.Name}: data_offsets [{cur.Begin},{cur.End}] overlap tensor {prev.Name} [{prev.Begin},{prev.End}]");
            }

            long covered = furthest?.End ?? 0;
            if (cur.Begin > covered)
            {
                throw new CheckpointFormatException(file, cur.Name,
                    $"tensor {cur.Name}: data_offsets [{cur.Begin},{cur.End}] leave bytes [{covered},{cur.Begin}) of the data section to no tensor");
            }

            if (furthest is null || cur.End > furthest.End) furthest = cur;
        }

        long end = furthest?.End ?? 0;
        if (end != dataLength)
        {
            throw new CheckpointFormatException(file, null,
                $"{dataLength - end} bytes after the last tensor: the tensors cover {end} bytes of the {dataLength}-byte data section");
        }
    }
}
