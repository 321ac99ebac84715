using System.Buffers.Binary;
using System.Text;

namespace Rlhf.Onnx;

/// <summary>
/// A growable buffer that encodes protocol-buffer fields (wire types varint, 64-bit, length-delimited, 32-bit).
/// Only what ONNX's ModelProto needs; nested messages are encoded into their own buffer and then embedded.
/// </summary>
internal sealed class ProtoWriter
{
    private byte[] buffer = new byte[256];
    private int length;

    public int Length => length;

    public ReadOnlySpan<byte> Written => buffer.AsSpan(0, length);

    public void Varint(int field, long value)
    {
        Tag(field, 0);
        RawVarint((ulong)value);
    }

    public void Float(int field, float value)
    {
        Tag(field, 5);
        Ensure(4);
        BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(length), value);
        length += 4;
    }

    public void String(int field, string value)
    {
        int n = Encoding.UTF8.GetByteCount(value);
        Tag(field, 2);
        RawVarint((ulong)n);
        Ensure(n);
        Encoding.UTF8.GetBytes(value, buffer.AsSpan(length));
        length += n;
    }

    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, 2);
        RawVarint((ulong)value.Length);
        Ensure(value.Length);
        value.CopyTo(buffer.AsSpan(length));
        length += value.Length;
    }

    public void Message(int field, ProtoWriter nested) => Bytes(field, nested.Written);

    /// <summary>Packed repeated int64 (varints in one length-delimited field).</summary>
    public void PackedInt64(int field, ReadOnlySpan<long> values)
    {
        var inner = new ProtoWriter();
        foreach (long v in values) inner.RawVarint((ulong)v);
        Bytes(field, inner.Written);
    }

    /// <summary>Packed repeated float.</summary>
    public void PackedFloat(int field, ReadOnlySpan<float> values)
    {
        Tag(field, 2);
        RawVarint((ulong)(values.Length * 4));
        Ensure(values.Length * 4);
        foreach (float v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(length), v);
            length += 4;
        }
    }

    /// <summary>The header of a length-delimited field whose payload is written separately (large tensors).</summary>
    public void LengthPrefix(int field, long payloadLength)
    {
        Tag(field, 2);
        RawVarint((ulong)payloadLength);
    }

    public static int VarintSize(ulong value)
    {
        int n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    /// <summary>Bytes taken by a length-delimited field with this field number and payload length.</summary>
    public static long FieldSize(int field, long payloadLength) =>
        VarintSize((ulong)(field << 3 | 2)) + VarintSize((ulong)payloadLength) + payloadLength;

    public void WriteTo(Stream stream) => stream.Write(buffer, 0, length);

    private void Tag(int field, int wireType) => RawVarint((ulong)(field << 3 | wireType));

    private void RawVarint(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            buffer[length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        buffer[length++] = (byte)value;
    }

    private void Ensure(int extra)
    {
        if (length + extra <= buffer.Length) return;
        long size = Math.Max((long)buffer.Length * 2, (long)length + extra);
        Array.Resize(ref buffer, (int)Math.Min(size, Array.MaxLength));
    }
}
