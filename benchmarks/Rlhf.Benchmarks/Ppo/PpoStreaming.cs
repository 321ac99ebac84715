using System.Runtime.Intrinsics;

namespace Rlhf.Benchmarks.Ppo;

/// <summary>
/// Memory-bound baselines for the PPO / optimizer kernels: each reads every input buffer once and writes every output
/// buffer once (a trivial add per element), split over the same number of threads as the kernel under test.
/// </summary>
internal static unsafe class PpoStreaming
{
    /// <summary>Reads a, b, c (and d when given); writes a+b to x and b+c to y (when given).</summary>
    public static void Run(float[] a, float[] b, float[] c, float[]? d, float[] x, float[]? y, int threads)
    {
        int n = a.Length;
        if (threads <= 1)
        {
            Range(a, b, c, d, x, y, 0, n);
            return;
        }

        Parallel.For(0, threads, w =>
        {
            int begin = (int)((long)n * w / threads) & ~15, end = w == threads - 1 ? n : (int)((long)n * (w + 1) / threads) & ~15;
            Range(a, b, c, d, x, y, begin, end);
        });
    }

    private static void Range(float[] a, float[] b, float[] c, float[]? d, float[] x, float[]? y, int begin, int end)
    {
        fixed (float* pa = a, pb = b, pc = c, pd = d, px = x, py = y)
        {
            int i = begin;
            for (; i + 16 <= end; i += 16)
            {
                var va = Vector512.Load(pa + i);
                var vb = Vector512.Load(pb + i);
                var vc = Vector512.Load(pc + i);
                if (pd != null) vc += Vector512.Load(pd + i);
                (va + vb).Store(px + i);
                if (py != null) (vb + vc).Store(py + i);
            }

            for (; i < end; i++)
            {
                float vc = pc[i] + (pd != null ? pd[i] : 0f);
                px[i] = pa[i] + pb[i];
                if (py != null) py[i] = pb[i] + vc;
            }
        }
    }

    /// <summary>AdamW's traffic: reads p, g, m, v; writes p, m, v.</summary>
    public static void RunAdam(float[] p, float[] g, float[] m, float[] v, int threads)
    {
        int n = p.Length;
        if (threads <= 1)
        {
            AdamRange(p, g, m, v, 0, n);
            return;
        }

        Parallel.For(0, threads, w =>
        {
            int begin = (int)((long)n * w / threads) & ~15, end = w == threads - 1 ? n : (int)((long)n * (w + 1) / threads) & ~15;
            AdamRange(p, g, m, v, begin, end);
        });
    }

    private static void AdamRange(float[] p, float[] g, float[] m, float[] v, int begin, int end)
    {
        fixed (float* pp = p, pg = g, pm = m, pv = v)
        {
            int i = begin;
            for (; i + 16 <= end; i += 16)
            {
                var vg = Vector512.Load(pg + i);
                (Vector512.Load(pp + i) + vg).Store(pp + i);
                (Vector512.Load(pm + i) + vg).Store(pm + i);
                (Vector512.Load(pv + i) + vg).Store(pv + i);
            }

            for (; i < end; i++)
            {
                pp[i] += pg[i];
                pm[i] += pg[i];
                pv[i] += pg[i];
            }
        }
    }
}
