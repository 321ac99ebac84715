using System.Numerics.Tensors;
using Rlhf.Kernels;

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
        SumOverRowChunks(new DotRead(first, second), rows, vocabulary);

    private interface IChunkRead
    {
        float Read(int start, int length);
    }

    private readonly struct SumRead(float[] buffer) : IChunkRead
    {
        public float Read(int start, int length) => TensorPrimitives.Sum<float>(buffer.AsSpan(start, length));
    }

    private readonly struct DotRead(float[] first, float[] second) : IChunkRead
    {
        public float Read(int start, int length) => TensorPrimitives.Dot<float>(first.AsSpan(start, length), second.AsSpan(start, length));
    }

    /// <summary>Σ of <paramref name="read"/> over the kernels' fixed row chunks, one per thread (inline on one thread).</summary>
    private static float SumOverRowChunks<TRead>(TRead read, int rows, int vocabulary)
        where TRead : struct, IChunkRead
    {
        int threads = Math.Min(rows, KernelParallelism.MaxThreads);
        if (threads == 1) return read.Read(0, rows * vocabulary);
        var partial = new float[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, chunk =>
        {
            long start = (long)rows * chunk / threads * vocabulary, end = (long)rows * (chunk + 1) / threads * vocabulary;
            partial[chunk] = read.Read((int)start, (int)(end - start));
        });
        return TensorPrimitives.Sum<float>(partial);
    }
}
