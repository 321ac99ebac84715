using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Rlhf.Formats;

/// <summary>Little-endian element decoding from checkpoint bytes to fp32.</summary>
internal static class DTypeConversion
{
    /// <summary>destination[i] = element i of <paramref name="source"/> read as <paramref name="dtype"/> (little-endian), exactly;
    /// NaN and ±Inf stay NaN and ±Inf, F16 subnormals become the equal fp32 normals.</summary>
    internal static void ToSingle(SafetensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!BitConverter.IsLittleEndian)
        {
            ToSingleScalar(dtype, source, destination);
            return;
        }

        switch (dtype)
        {
            case SafetensorsDType.F32:
                // Bytes in the map need not be 4-aligned; Cast on x64/arm64 tolerates that.
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case SafetensorsDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            case SafetensorsDType.BF16:
                Bf16ToSingle(MemoryMarshal.Cast<byte, ushort>(source), destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype");
        }
    }

    // bf16 is the top half of an fp32 bit pattern: widening and shifting is exact for every value.
    private static void Bf16ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var dst = MemoryMarshal.Cast<float, uint>(destination);
            for (; i <= source.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var v = Vector256.Create(source.Slice(i, Vector256<ushort>.Count));
                var (lo, hi) = Vector256.Widen(v);
                Vector256.ShiftLeft(lo, 16).CopyTo(dst.Slice(i));
                Vector256.ShiftLeft(hi, 16).CopyTo(dst.Slice(i + Vector256<uint>.Count));
            }
        }

        for (; i < source.Length; i++)
        {
            destination[i] = BitConverter.UInt32BitsToSingle((uint)source[i] << 16);
        }
    }

    private static void ToSingleScalar(SafetensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = dtype switch
            {
                SafetensorsDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(source.Slice(4 * i)),
                SafetensorsDType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(2 * i)),
                SafetensorsDType.BF16 => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(2 * i)) << 16),
                _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
            };
        }
    }
}
