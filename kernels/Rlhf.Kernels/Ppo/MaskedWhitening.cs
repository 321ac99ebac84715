using System.Runtime.Intrinsics;

namespace Rlhf.Kernels.Ppo;

/// <summary>Mean and unbiased variance of the valid entries of a masked span (TRL masked_mean / masked_var).</summary>
/// <param name="Mean">Σ x[i] / N over mask[i] ≠ 0.</param>
/// <param name="Variance">Σ (x[i] − Mean)² / (N − 1) over mask[i] ≠ 0 (TRL's masked_var with Bessel's correction).</param>
/// <param name="Count">N, the number of valid entries.</param>
public readonly record struct MaskedMoments(double Mean, double Variance, int Count);

/// <summary>Masked whitening of advantages or rewards (TRL masked_whiten), with deterministic reductions.</summary>
public static unsafe class MaskedWhitening
{
    /// <summary>Whitening adds this to the variance before the square root, as TRL does.</summary>
    public const double VarianceEpsilon = 1e-8;

    /// <summary>
    /// Effectively computes the mean and the unbiased variance of {x[i] : mask[i] ≠ 0} in two passes
    /// (mean first, then centred squares) with float vector partials flushed to double per fixed chunk, combined in
    /// chunk order: the same bits for any thread count. Masked entries are never read into the result.
    /// </summary>
    /// <exception cref="ArgumentException">Length mismatch, fewer than 2 valid entries (the unbiased variance needs 2),
    /// or a NaN at a valid entry (the message names the argument, index and value).</exception>
    public static MaskedMoments Moments(ReadOnlySpan<float> x, ReadOnlySpan<float> mask)
    {
        PpoArgs.Length(mask.Length, x.Length, nameof(mask), "x.Length");
        int n = x.Length;
        int chunkLength = ChunkRunner.ChunkLength(n, 16 * 1024);
        int chunks = ChunkRunner.ChunkCount(n, chunkLength);
        double* sums = stackalloc double[ChunkRunner.MaxChunks];
        int* counts = stackalloc int[ChunkRunner.MaxChunks];
        double mean, centred;
        long count = 0;
        fixed (float* px = x, pm = mask)
        {
            var body = new Body { X = px, Mask = pm, Length = n, ChunkLength = chunkLength, Sums = sums, Counts = counts, Centre = float.NaN };
            ChunkRunner.Run(chunks, n, body);
            double sum = 0;
            for (int c = 0; c < chunks; c++)
            {
                sum += sums[c];
                count += counts[c];
            }

            if (count < 2) throw new ArgumentException($"mask has {count} valid entries; the unbiased variance needs at least 2.", nameof(mask));
            if (double.IsNaN(sum))
            {
                int i = PpoArgs.FirstNaN(x, mask);
                if (i >= 0) throw new ArgumentException($"x[{i}] = {x[i]} is not a number.", nameof(x));
            }

            mean = sum / count;
            body.Centre = (float)mean;
            ChunkRunner.Run(chunks, n, body);
            centred = 0;
            for (int c = 0; c < chunks; c++) centred += sums[c];
        }

        // Centring on the float-rounded mean; the tiny offset is removed exactly: Σ(x−m̃)² − N(m − m̃)².
        double offset = mean - (float)mean;
        double variance = (centred - count * offset * offset) / (count - 1);
        return new MaskedMoments(mean, Math.Max(0.0, variance), (int)count);
    }

    /// <summary>
    /// Effectively computes destination[i] = mask[i] ≠ 0 ? (x[i] − mean)/√(var + 1e−8) (+ mean when
    /// <paramref name="shiftMean"/> is false) : 0, with mean and var from <see cref="Moments"/>. In place is allowed
    /// (destination may be x). Masked entries are written 0 (TRL leaves its unused whitened padding there).
    /// </summary>
    /// <returns>The moments used.</returns>
    /// <exception cref="ArgumentException">As <see cref="Moments"/>, or destination length ≠ x length.</exception>
    public static MaskedMoments Whiten(ReadOnlySpan<float> x, ReadOnlySpan<float> mask, Span<float> destination, bool shiftMean = true)
    {
        PpoArgs.Length(destination.Length, x.Length, nameof(destination), "x.Length");
        var moments = Moments(x, mask);
        double scale = 1.0 / Math.Sqrt(moments.Variance + VarianceEpsilon);
        float s = (float)scale;
        float mean = (float)moments.Mean;
        float addBack = shiftMean ? 0f : mean;
        int n = x.Length;
        int chunkLength = ChunkRunner.ChunkLength(n, 32 * 1024);
        fixed (float* px = x, pm = mask, pd = destination)
        {
            ChunkRunner.Run(ChunkRunner.ChunkCount(n, chunkLength), n,
                new Apply { X = px, Mask = pm, Dest = pd, Length = n, ChunkLength = chunkLength, Mean = mean, Scale = s, AddBack = addBack });
        }

        return moments;
    }

    private struct Body : IChunkBody
    {
        public float* X, Mask;
        public int Length, ChunkLength;
        public double* Sums;
        public int* Counts;

        /// <summary>NaN: sum x (first pass); otherwise sum (x − Centre)² (second pass).</summary>
        public float Centre;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            bool squares = !float.IsNaN(Centre);
            double total = 0;
            int count = 0; // minus the number of masked entries; the valid count is the chunk length plus this
            // Float partials over at most 1024 entries, then double, keep the error at float-rounding level.
            while (i < end)
            {
                int blockEnd = Math.Min(end, i + 1024);
                float part = 0f;
                if (Vector512.IsHardwareAccelerated)
                {
                    var acc = Vector512<float>.Zero;
                    var zeros = Vector512<int>.Zero;
                    var centre = Vector512.Create(squares ? Centre : 0f);
                    for (; i + 16 <= blockEnd; i += 16)
                    {
                        var isZero = Vector512.Equals(Vector512.Load(Mask + i), Vector512<float>.Zero);
                        var d = Vector512.AndNot(Vector512.Load(X + i) - centre, isZero);
                        acc += squares ? d * d : d;
                        zeros += isZero.AsInt32();
                    }

                    part = Vector512.Sum(acc);
                    count += Vector512.Sum(zeros);
                }

                for (; i < blockEnd; i++)
                {
                    if (Mask[i] == 0f)
                    {
                        count--;
                        continue;
                    }

                    float d = squares ? X[i] - Centre : X[i];
                    part += squares ? d * d : d;
                }

                total += part;
            }

            Sums[chunk] = total;
            if (!squares) Counts[chunk] = count + (end - chunk * ChunkLength);
        }
    }

    private struct Apply : IChunkBody
    {
        public float* X, Mask, Dest;
        public int Length, ChunkLength;
        public float Mean, Scale, AddBack;

        public void Run(int chunk)
        {
            int i = chunk * ChunkLength;
            int end = Math.Min(Length, i + ChunkLength);
            if (Vector512.IsHardwareAccelerated)
            {
                var mu = Vector512.Create(Mean);
                var s = Vector512.Create(Scale);
                var back = Vector512.Create(AddBack);
                for (; i + 16 <= end; i += 16)
                {
                    var valid = ~Vector512.Equals(Vector512.Load(Mask + i), Vector512<float>.Zero);
                    (valid & ((Vector512.Load(X + i) - mu) * s + back)).Store(Dest + i);
                }
            }

            for (; i < end; i++) Dest[i] = Mask[i] != 0f ? (X[i] - Mean) * Scale + AddBack : 0f;
        }
    }
}
