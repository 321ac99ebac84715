namespace Rlhf.Tests.Kernels.Ppo;

/// <summary>Plain scalar double-precision references of TRL's PPO formulas, written straight from the definitions.</summary>
internal static class PpoReference
{
    public readonly record struct PolicyResult(double Loss, double ClipFraction, double ApproxKl, double MeanRatio, double[] Grad);

    public readonly record struct ValueResult(double Loss, double ClipFraction, double Error, double[] Grad);

    public static PolicyResult Policy(float[] newLp, float[] oldLp, float[] adv, float[] mask, double eps, double gradScale = 1)
    {
        int n = newLp.Length, count = 0;
        double loss = 0, clip = 0, kl = 0, ratioSum = 0;
        var grad = new double[n];
        for (int i = 0; i < n; i++) if (mask[i] != 0) count++;
        for (int i = 0; i < n; i++)
        {
            if (mask[i] == 0) continue;
            double d = (double)newLp[i] - oldLp[i], ratio = Math.Exp(d), a = adv[i];
            double l1 = -a * ratio, l2 = -a * Math.Min(Math.Max(ratio, 1 - eps), 1 + eps);
            loss += Math.Max(l1, l2);
            if (l2 > l1) clip++;
            kl += d * d;
            ratioSum += ratio;
            // max picks the unclipped term (derivative −A·ratio); the clipped term is flat outside the range.
            grad[i] = l1 >= l2 ? gradScale * l1 / count : 0;
        }

        return count == 0
            ? new PolicyResult(0, 0, 0, 0, grad)
            : new PolicyResult(loss / count, clip / count, 0.5 * kl / count, ratioSum / count, grad);
    }

    public static ValueResult Value(float[] v, float[] vOld, float[] ret, float[] mask, double eps, double gradScale = 1)
    {
        int n = v.Length, count = 0;
        double loss = 0, clip = 0, err = 0;
        var grad = new double[n];
        for (int i = 0; i < n; i++) if (mask[i] != 0) count++;
        for (int i = 0; i < n; i++)
        {
            if (mask[i] == 0) continue;
            // eps = +∞ is clipping off: the old values are not used (vOld ± ∞ would be NaN for an infinite vOld).
            double vc = double.IsPositiveInfinity(eps) ? v[i] : Math.Min(Math.Max(v[i], (double)vOld[i] - eps), (double)vOld[i] + eps);
            double l1 = ((double)v[i] - ret[i]) * ((double)v[i] - ret[i]), l2 = (vc - ret[i]) * (vc - ret[i]);
            loss += Math.Max(l1, l2);
            if (l2 > l1) clip++;
            err += l1;
            grad[i] = l1 >= l2 ? gradScale * ((double)v[i] - ret[i]) / count : 0;
        }

        return count == 0 ? new ValueResult(0, 0, 0, grad) : new ValueResult(0.5 * loss / count, clip / count, err / count, grad);
    }

    public static double[] Rewards(float[] kl, float[] scores, float[] mask, int batch, int steps, double beta)
    {
        var r = new double[batch * steps];
        for (int b = 0; b < batch; b++)
        {
            int last = -1;
            for (int t = 0; t < steps; t++)
            {
                int i = b * steps + t;
                if (mask[i] == 0) continue;
                r[i] = -beta * kl[i];
                last = i;
            }

            if (last >= 0) r[last] += scores[b];
        }

        return r;
    }

    /// <summary>TRL compute_advantages: values and rewards masked to 0, lastgaelam carried through every step.</summary>
    public static (double[] Adv, double[] Ret) Gae(float[] rewards, float[] values, float[] mask, int batch, int steps, double gamma, double lam)
    {
        var adv = new double[batch * steps];
        var ret = new double[batch * steps];
        for (int b = 0; b < batch; b++)
        {
            double last = 0;
            for (int t = steps - 1; t >= 0; t--)
            {
                int i = b * steps + t;
                double next = t < steps - 1 ? values[i + 1] * (double)mask[i + 1] : 0;
                double v = values[i] * (double)mask[i], r = rewards[i] * (double)mask[i];
                last = r + gamma * next - v + gamma * lam * last;
                adv[i] = mask[i] != 0 ? last : 0;
                ret[i] = mask[i] != 0 ? last + v : 0;
            }
        }

        return (adv, ret);
    }

    public static (double Mean, double Var) Moments(float[] x, float[] mask)
    {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < x.Length; i++) if (mask[i] != 0) { sum += x[i]; n++; }
        double mean = sum / n, sq = 0;
        for (int i = 0; i < x.Length; i++) if (mask[i] != 0) sq += (x[i] - mean) * (x[i] - mean);
        return (mean, sq / n * n / (n - 1));
    }

    public static double[] Whiten(float[] x, float[] mask, bool shiftMean)
    {
        var (mean, var) = Moments(x, mask);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            y[i] = mask[i] != 0 ? (x[i] - mean) / Math.Sqrt(var + 1e-8) + (shiftMean ? 0 : mean) : 0;
        return y;
    }
}
