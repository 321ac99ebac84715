namespace Rlhf.Formats;

/// <summary>The safetensors element types this engine reads (F32, F16, BF16 are converted to fp32; only F32 is written).</summary>
public enum SafetensorsDType
{
    F32,
    F16,
    BF16,
}

/// <summary>Header entry of one tensor: dtype, shape and byte range [Begin, End) relative to the start of the data section.</summary>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, int[] Shape, long Begin, long End)
{
    public long ElementCount => TensorShape.ElementCount(Shape);

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SafetensorsDType dtype) => dtype == SafetensorsDType.F32 ? 4 : 2;
}
