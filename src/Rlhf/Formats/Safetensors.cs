using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Rlhf.Formats;

/// <summary>
/// Reads and writes the safetensors format: u64 little-endian header length N, N bytes of JSON (padded with spaces
/// so that 8 + N is a multiple of 8), then the data section. Reading accepts F32, F16 and BF16 (converted to fp32);
/// writing produces F32 with tensors sorted by name, as upstream's serializer does for one dtype.
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
        byte[] header = BuildHeader(tensors, out var sorted);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            stream.Write(len);
            stream.Write(header);
            foreach (var t in sorted)
            {
                WriteFloats(stream, t.Data);
            }
        });
    }

    /// <summary>The header bytes (JSON plus space padding, without the 8-byte length) that <see cref="Write"/> produces.</summary>
    internal static byte[] BuildHeader(NamedTensors tensors, out NamedTensor[] sorted)
    {
        sorted = tensors.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            if (tensors.Metadata.Count > 0)
            {
                var keys = tensors.Metadata.Keys.ToArray();
                Array.Sort(keys, string.CompareOrdinal);
                w.WriteStartObject("__metadata__");
                foreach (var k in keys)
                {
                    w.WriteString(k, tensors.Metadata[k]);
                }

                w.WriteEndObject();
            }

            long offset = 0;
            foreach (var t in sorted)
            {
                long bytes = checked(t.Data.LongLength * sizeof(float));
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

    private static void WriteFloats(Stream stream, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
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
