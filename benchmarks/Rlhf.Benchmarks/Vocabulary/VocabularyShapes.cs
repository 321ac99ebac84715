using System.Numerics.Tensors;
using Rlhf.Kernels;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Benchmarks.Vocabulary;

/// <summary>Shared inputs and the memory-bandwidth anchor for the vocabulary suites.</summary>
internal static class VocabularyShapes
{
    public static (int Rows, int Vocabulary) Parse(string shape)
    {
        var parts = shape.Split('x');
        return (int.Parse(parts[0]), int.Parse(parts[1]));
    }

    public static float[] RandomLogits(int rows, int vocabulary, int seed)
    {
        var random = new Random(seed);
        var logits = GC.AllocateUninitializedArray<float>(rows * vocabulary);
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)(random.NextDouble() * 8 - 4);
        return logits;
    }

    /// <summary>
    /// Reads every element once on the same threads and row chunks as the kernels: the bandwidth floor
    /// a one-pass kernel is measured against.
    /// </summary>
    public static float ReadPass(float[] buffer, int rows, int vocabulary) => SumOverRowChunks(new SumRead(buffer), rows, vocabulary);

    /// <summary>
    /// Reads two buffers side by side (a dot product, element i of both together), as any one-pass kernel over two
    /// inputs must: where the buffers' placement makes that access pattern slower than reading them one after the
    /// other (see StreamAliasing), this shows how much of a kernel's time the placement alone costs.
    /// </summary>
    public static float ReadSideBySide(float[] first, float[] second, int rows, int vocabulary) =>
        SumOverRowChunks(new DotRead(first, 0, second, 0), rows, vocabulary);

    /// <summary><see cref="ReadSideBySide(float[], float[], int, int)"/> over two [rows, vocabulary] ranges of one
    /// buffer, the first at 0 and the second at <paramref name="secondStart"/>.</summary>
    public static float ReadSideBySide(float[] buffer, int secondStart, int rows, int vocabulary) =>
        SumOverRowChunks(new DotRead(buffer, 0, buffer, secondStart), rows, vocabulary);

    /// <summary>
    /// Where, in floats, the second of two [rows, vocabulary] inputs starts in one buffer that holds both, so that
    /// they are 64 MiB more than the first's size (rounded up to 1 MiB) apart: away from the 256 MiB multiples at
    /// which the GC's back-to-back arrays make side-by-side reads slower here (see StreamAliasing).
    /// </summary>
    public static int SecondStartApart(int rows, int vocabulary)
    {
        const long MiB = 1 << 20;
        long bytes = 4L * rows * vocabulary;
        return (int)(((bytes + MiB - 1) / MiB * MiB + 64 * MiB) / 4);
    }

    private interface IChunkRead
    {
        float Read(int start, int length);
    }

    private readonly struct SumRead(float[] buffer) : IChunkRead
    {
        public float Read(int start, int length) => TensorPrimitives.Sum<float>(buffer.AsSpan(start, length));
    }

    private readonly struct DotRead(float[] first, int firstStart, float[] second, int secondStart) : IChunkRead
    {
        public float Read(int start, int length) =>
            TensorPrimitives.Dot<float>(first.AsSpan(firstStart + start, length), second.AsSpan(secondStart + start, length));
    }

    /// <summary>Σ of <paramref name="read"/> over the kernels' row chunks, handed out to the same threads as theirs
    /// (<see cref="RowParallel"/>; inline on one thread).</summary>
    private static float SumOverRowChunks<TRead>(TRead read, int rows, int vocabulary)
        where TRead : struct, IChunkRead
    {
        // One slot per row: a chunk writes its partial sum at its first row, so no two chunks share a slot.
        var partial = new float[rows];
        RowParallel.For(rows, vocabulary, new ChunkSum<TRead>(read, partial, vocabulary));
        return TensorPrimitives.Sum<float>(partial);
    }

    private readonly struct ChunkSum<TRead>(TRead read, float[] partial, int vocabulary) : IRowBody
        where TRead : struct, IChunkRead
    {
        public void Run(int startRow, int endRow) =>
            partial[startRow] = read.Read(startRow * vocabulary, (endRow - startRow) * vocabulary);
    }
}
