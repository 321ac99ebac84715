using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Rlhf.Formats;

/// <summary>Little-endian element decoding from checkpoint bytes to fp32.</summary>
internal static class DTypeConversion
{
    /// <summary>destination[i] = element i of <paramref name="source"/> read as <paramref name="dtype"/> (little-endian), exactly.</summary>
    internal static void ToSingle(SafetensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    // Bytes in the map need not be 4-aligned; Cast on x64/arm64 tolerates that.
                    MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                }
                else
                {
                    for (int i = 0; i < destination.Length; i++)
                    {
                        destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source.Slice(4 * i));
                    }
                }

                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(2 * i));
                }

                break;
            case SafetensorsDType.BF16:
                // bf16 is the top half of an fp32 bit pattern: widening is exact for every value, NaN and ±Inf included.
                for (int i = 0; i < destination.Length; i++)
                {
                    uint bits = (uint)BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(2 * i)) << 16;
                    destination[i] = BitConverter.UInt32BitsToSingle(bits);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype");
        }
    }
}
