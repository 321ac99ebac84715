namespace Rlhf.Tests.Kernels.Vocabulary;

/// <summary>Plain two-pass double-precision references for the vocabulary kernels (tests only).</summary>
internal static class VocabularyReference
{
    public readonly record struct Stats(double LogProb, double Entropy, double LogSumExp);

    public static double LogSumExp(ReadOnlySpan<double> z)
    {
        double m = double.NegativeInfinity;
        foreach (double v in z) m = Math.Max(m, v);
        double s = 0;
        foreach (double v in z)
        {
            if (v != double.NegativeInfinity) s += Math.Exp(v - m);
        }

        return m + Math.Log(s);
    }

    public static double[] Scaled(ReadOnlySpan<float> row, double temperature)
    {
        var z = new double[row.Length];
        for (int j = 0; j < row.Length; j++) z[j] = row[j] / temperature;
        return z;
    }

    public static Stats Row(ReadOnlySpan<float> row, int token, double temperature) => Row(Scaled(row, temperature), token);

    public static Stats Row(double[] z, int token)
    {
        double lse = LogSumExp(z);
        double h = 0;
        foreach (double v in z)
        {
            if (v == double.NegativeInfinity) continue;
            double logp = v - lse;
            h -= Math.Exp(logp) * logp;
        }

        return new Stats(z[token] - lse, h, lse);
    }

    public static double Kl(ReadOnlySpan<float> policy, ReadOnlySpan<float> reference, double temperature)
    {
        var x = Scaled(policy, temperature);
        var y = Scaled(reference, temperature);
        double lx = LogSumExp(x), ly = LogSumExp(y);
        double kl = 0;
        for (int j = 0; j < x.Length; j++)
        {
            if (x[j] == double.NegativeInfinity) continue;
            double p = Math.Exp(x[j] - lx);
            kl += p * ((x[j] - lx) - (y[j] - ly));
        }

        return kl;
    }

    /// <summary>The scalar loss whose gradient the backward kernel returns: gLogp·log p_token + gH·H of softmax(x/T).</summary>
    public static double Loss(double[] x, int token, double temperature, double gLogp, double gEntropy)
    {
        var z = new double[x.Length];
        for (int j = 0; j < x.Length; j++) z[j] = x[j] / temperature;
        var s = Row(z, token);
        return gLogp * s.LogProb + gEntropy * s.Entropy;
    }

    /// <summary>Central finite differences of <see cref="Loss"/> in double.</summary>
    public static double[] FiniteDifferenceGradient(ReadOnlySpan<float> row, int token, double temperature, double gLogp, double gEntropy, double step = 1e-5)
    {
        var x = new double[row.Length];
        for (int j = 0; j < x.Length; j++) x[j] = row[j];
        var g = new double[x.Length];
        for (int j = 0; j < x.Length; j++)
        {
            if (x[j] == double.NegativeInfinity) continue;
            double keep = x[j];
            x[j] = keep + step;
            double up = Loss(x, token, temperature, gLogp, gEntropy);
            x[j] = keep - step;
            double down = Loss(x, token, temperature, gLogp, gEntropy);
            x[j] = keep;
            g[j] = (up - down) / (2 * step);
        }

        return g;
    }
}
