namespace Rlhf.Tests.Kernels.Optim;

/// <summary>Scalar double references of torch.optim.AdamW (one step) and clip_grad_norm_.</summary>
internal static class OptimReference
{
    public static void AdamWStep(double[] p, float[] g, double[] m, double[] v, int step, double lr, double b1, double b2, double eps, double wd)
    {
        double bc1 = 1 - Math.Pow(b1, step), bc2 = 1 - Math.Pow(b2, step);
        for (int i = 0; i < p.Length; i++)
        {
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
        }
    }

    public static double Norm(params float[][] grads)
    {
        double s = 0;
        foreach (var g in grads) foreach (var x in g) s += (double)x * x;
        return Math.Sqrt(s);
    }
}
