namespace Rlhf.Classification;

/// <summary>Softmax cross-entropy over a few classes per row (the classifier head's loss).</summary>
public static class ClassificationLoss
{
    /// <summary>
    /// Effectively computes, per row i with logits z [rows, classes] and target y[i]:
    /// loss_i = logsumexp(z_i) − z_i[y_i] (shifted by the row max, so large logits do not overflow), returns the mean over
    /// rows and the fraction of rows whose arg-max equals the target (first maximum wins ties); writes
    /// d mean-loss / d z = (softmax(z_i) − onehot(y_i)) / rows into <paramref name="dLogits"/>. NaN logits give a NaN loss.
    /// </summary>
    public static (double Loss, double Accuracy) Compute(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int classes, Span<float> dLogits)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        int rows = targets.Length;
        if (rows == 0) throw new ArgumentException("no rows.", nameof(targets));
        if (logits.Length != rows * classes) throw new ArgumentException($"logits has {logits.Length} elements, needs rows*classes = {rows * classes}.", nameof(logits));
        if (dLogits.Length != rows * classes) throw new ArgumentException($"dLogits has {dLogits.Length} elements, needs {rows * classes}.", nameof(dLogits));
        double loss = 0;
        int correct = 0;
        for (int i = 0; i < rows; i++)
        {
            int y = targets[i];
            if ((uint)y >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(targets), y, $"targets[{i}] = {y} is outside [0, {classes}).");
            var z = logits.Slice(i * classes, classes);
            var dz = dLogits.Slice(i * classes, classes);
            float max = z[0];
            int arg = 0;
            for (int c = 1; c < classes; c++)
            {
                if (z[c] > max)
                {
                    max = z[c];
                    arg = c;
                }
            }

            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[c] - max);
            loss += Math.Log(sum) + max - z[y];
            for (int c = 0; c < classes; c++) dz[c] = (float)((Math.Exp(z[c] - max) / sum - (c == y ? 1 : 0)) / rows);
            if (arg == y) correct++;
        }

        return (loss / rows, (double)correct / rows);
    }

    /// <summary>probabilities = softmax(logits) per row of <paramref name="classes"/> (shifted by the row max).</summary>
    public static void Softmax(ReadOnlySpan<float> logits, int classes, Span<float> probabilities)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        if (logits.Length % classes != 0) throw new ArgumentException($"logits has {logits.Length} elements, not a multiple of {classes}.", nameof(logits));
        if (probabilities.Length != logits.Length) throw new ArgumentException($"probabilities has {probabilities.Length} elements, needs {logits.Length}.", nameof(probabilities));
        for (int i = 0; i < logits.Length; i += classes)
        {
            var z = logits.Slice(i, classes);
            var p = probabilities.Slice(i, classes);
            float max = System.Numerics.Tensors.TensorPrimitives.Max(z);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[c] - max);
            for (int c = 0; c < classes; c++) p[c] = (float)(Math.Exp(z[c] - max) / sum);
        }
    }
}
