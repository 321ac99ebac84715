using ILGPU;
using ILGPU.Runtime;

namespace Rlhf.Kernels.Device;

/// <summary>
/// The two strided element-wise steps of a LoRA adapter on a device (the matrix products go to
/// <see cref="IDeviceGemm"/>): adding an adapter's scaled output into a column block of a fused projection
/// (e.g. q inside GPT-2's q|k|v) and reading that block's gradient back out, scaled. Written for CUDA, tested on
/// ILGPU's CPU accelerator. Launches are asynchronous on the accelerator's default stream.
/// </summary>
public sealed class LoraDeviceKernels
{
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ColumnBlock> addScaled;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ColumnBlock> readScaled;

    public LoraDeviceKernels(KernelDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        addScaled = device.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ColumnBlock>(AddScaledKernel);
        readScaled = device.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ColumnBlock>(ReadScaledKernel);
    }

    /// <summary>
    /// y [n, yWidth], block [n, width] → effectively y[i, column + j] += scale·block[i, j] for j &lt; width; other
    /// columns are untouched. NaN/±Inf propagate.
    /// </summary>
    public void AddScaledColumns(ArrayView<float> y, ArrayView<float> block, int n, int yWidth, int column, int width, float scale)
    {
        var b = Check(y, block, n, yWidth, column, width, nameof(y), nameof(block));
        if (block.Length > 0) addScaled((int)block.Length, y, block, b with { Scale = scale });
    }

    /// <summary>dy [n, dyWidth] → block [n, width] (overwritten): effectively block[i, j] = scale·dy[i, column + j].</summary>
    public void ReadScaledColumns(ArrayView<float> dy, ArrayView<float> block, int n, int dyWidth, int column, int width, float scale)
    {
        var b = Check(dy, block, n, dyWidth, column, width, nameof(dy), nameof(block));
        if (block.Length > 0) readScaled((int)block.Length, dy, block, b with { Scale = scale });
    }

    private static ColumnBlock Check(ArrayView<float> wide, ArrayView<float> block, int n, int wideWidth, int column, int width, string wideName, string blockName)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        if (column < 0 || column + width > wideWidth)
            throw new ArgumentOutOfRangeException(nameof(column), column, $"columns [{column}, {column + width}) are outside [0, {wideWidth}).");
        if (wide.Length != (long)n * wideWidth) throw new ArgumentException($"{wideName} has {wide.Length} elements, expected {(long)n * wideWidth}.", wideName);
        if (block.Length != (long)n * width) throw new ArgumentException($"{blockName} has {block.Length} elements, expected {(long)n * width}.", blockName);
        if (block.Length > int.MaxValue) throw new ArgumentException($"{blockName} has {block.Length} elements; at most {int.MaxValue} per launch.", blockName);
        return new ColumnBlock { WideWidth = wideWidth, Column = column, Width = width };
    }

    internal struct ColumnBlock
    {
        public int WideWidth, Column, Width;
        public float Scale;
    }

    private static void AddScaledKernel(Index1D i, ArrayView<float> y, ArrayView<float> block, ColumnBlock b)
    {
        long row = i / b.Width, col = i % b.Width;
        long at = row * b.WideWidth + b.Column + col;
        y[at] = block[i] * b.Scale + y[at];
    }

    private static void ReadScaledKernel(Index1D i, ArrayView<float> dy, ArrayView<float> block, ColumnBlock b)
    {
        long row = i / b.Width, col = i % b.Width;
        block[i] = dy[row * b.WideWidth + b.Column + col] * b.Scale;
    }
}
