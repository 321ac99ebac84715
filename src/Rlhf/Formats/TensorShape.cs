namespace Rlhf.Formats;

/// <summary>Helpers for tensor shapes given as int arrays (row-major, outermost dimension first).</summary>
public static class TensorShape
{
    /// <summary>Number of elements: the product of the dimensions (1 for a scalar shape []).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is negative.</exception>
    /// <exception cref="OverflowException">The product does not fit in a long.</exception>
    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(shape), shape[i], $"dimension {i} is negative");
            }

            n = checked(n * shape[i]);
        }

        return n;
    }

    /// <summary>Formats a shape as "[a,b,c]", as used in error messages.</summary>
    public static string Format(ReadOnlySpan<int> shape)
    {
        var sb = new System.Text.StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(shape[i]);
        }

        return sb.Append(']').ToString();
    }
}
