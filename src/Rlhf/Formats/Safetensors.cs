using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

using Rlhf.IO;

namespace Rlhf.Formats;

/// <summary>
/// Reads and writes the safetensors format: u64 little-endian header length N, N bytes of JSON (padded with spaces
/// so that 8 + N is a multiple of 8), then the data section. Reading accepts F32, F16 and BF16 (converted to fp32);
/// writing produces F32 with tensors sorted by name, as upstream's serializer does for one dtype.
/// The reader accepts gaps between tensors (upstream's writer never makes them) but not overlaps.
/// </summary>
public static class Safetensors
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // serde_json writes non-ASCII names as raw UTF-8; keep them readable the same way.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Reads every tensor of <paramref name="path"/> into memory as fp32 (see <see cref="SafetensorsFile"/> to stream from a map).</summary>
    /// <exception cref="CheckpointFormatException">Malformed file; the message names the file and the tensor.</exception>
    public static NamedTensors Read(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.ReadAll();
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (and their <see cref="NamedTensors.Metadata"/> as <c>__metadata__</c> when non-empty)
    /// as F32 to <paramref name="path"/>, atomically (temporary file in the same folder, then rename).
    /// </summary>
    public static void Write(string path, NamedTensors tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var views = new List<TensorView>(tensors.Count);
        foreach (var t in tensors)
        {
            views.Add(new TensorView(t.Name, t.Shape, t.Data));
        }

        Write(path, views, tensors.Metadata);
    }

    /// <summary>
    /// Writes tensors given as views (e.g. slices of one flat parameter buffer, so nothing is copied) as F32 to
    /// <paramref name="path"/>, atomically, sorted by name, with <paramref name="metadata"/> as <c>__metadata__</c> when non-empty.
    /// </summary>
    /// <exception cref="ArgumentException">Duplicate names, or a view whose length differs from its shape's element count.</exception>
    public static void Write(string path, IReadOnlyList<TensorView> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        byte[] header = BuildHeader(tensors, metadata, out var sorted);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            stream.Write(len);
            stream.Write(header);
            foreach (var t in sorted)
            {
                WriteFloats(stream, t.Data.Span);
            }
        });
    }

    /// <summary>The header bytes (JSON plus space padding, without the 8-byte length) that <see cref="Write"/> produces.</summary>
    internal static byte[] BuildHeader(IReadOnlyList<TensorView> tensors, IReadOnlyDictionary<string, string>? metadata, out TensorView[] sorted)
    {
        sorted = tensors.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (int i = 0; i < sorted.Length; i++)
        {
            var t = sorted[i];
            ArgumentNullException.ThrowIfNull(t.Name, nameof(tensors));
            ArgumentNullException.ThrowIfNull(t.Shape, nameof(tensors));
            if (TensorShape.ElementCount(t.Shape) != t.Data.Length)
            {
                throw new ArgumentException(
                    $"tensor {t.Name} has shape {TensorShape.Format(t.Shape)} but {t.Data.Length} values", nameof(tensors));
            }

            if (i > 0 && sorted[i - 1].Name == t.Name)
            {
                throw new ArgumentException($"tensor {t.Name} given twice", nameof(tensors));
            }

            if (t.Name == "__metadata__")
            {
                throw new ArgumentException("a tensor cannot be called __metadata__", nameof(tensors));
            }
        }

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                var keys = metadata.Keys.ToArray();
                Array.Sort(keys, string.CompareOrdinal);
                w.WriteStartObject("__metadata__");
                foreach (var k in keys)
                {
                    w.WriteString(k, metadata[k]);
                }

                w.WriteEndObject();
            }

            long offset = 0;
            foreach (var t in sorted)
            {
                long bytes = checked((long)t.Data.Length * sizeof(float));
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (int d in t.Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }

            w.WriteEndObject();
        }

        // Upstream pads the header with spaces so the data section starts 8-byte aligned.
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++)
        {
            ms.WriteByte((byte)' ');
        }

        return ms.ToArray();
    }

    private static void WriteFloats(Stream stream, ReadOnlySpan<float> data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data));
            return;
        }

        Span<byte> b = stackalloc byte[4];
        foreach (float v in data)
        {
            BinaryPrimitives.WriteSingleLittleEndian(b, v);
            stream.Write(b);
        }
    }
}
