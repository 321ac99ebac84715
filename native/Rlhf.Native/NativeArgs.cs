namespace Rlhf.Native;

/// <summary>Turns the C side's (pointer, shape) pairs into spans, naming the argument when one is unusable.</summary>
internal static unsafe class NativeArgs
{
    /// <summary>A count (rows, batch, steps, vocabulary) that must be positive.</summary>
    public static void Positive(long value, string name)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive; got {value}.");
    }

    /// <summary>a·b elements, checked against the int range spans can hold.</summary>
    /// <summary>The element count of a [rows, columns] buffer: both positive, the product within int.</summary>
    public static int Shape(long rows, string rowsName, long columns, string columnsName, string bufferName)
    {
        Positive(rows, rowsName);
        Positive(columns, columnsName);
        return Product(rows, columns, bufferName);
    }

    public static int Product(long a, long b, string name)
    {
        long n = a * b;
        if (n > int.MaxValue)
            throw new ArgumentOutOfRangeException(name, n, $"{name} has {a}·{b} = {n} elements, more than {int.MaxValue}.");
        return (int)n;
    }

    public static ReadOnlySpan<T> In<T>(T* pointer, int length, string name) where T : unmanaged
    {
        if (pointer == null) throw new ArgumentNullException(name, $"{name} is NULL.");
        return new ReadOnlySpan<T>(pointer, length);
    }

    public static Span<T> Out<T>(T* pointer, int length, string name) where T : unmanaged
    {
        if (pointer == null) throw new ArgumentNullException(name, $"{name} is NULL.");
        return new Span<T>(pointer, length);
    }
}
