namespace Rlhf.Model;

/// <summary>
/// Receives <see cref="ParameterLayout"/>'s list of a model's tensors in buffer order: the layout gives each an offset
/// in its flat buffer, <see cref="ParameterLayout.CountParameters"/> only adds up their sizes, so the two cannot disagree.
/// Dimensions are long so a config's products (3·d, a fused width) cannot wrap before a placement checks them.
/// </summary>
internal abstract class TensorPlacement
{
    /// <summary>Takes the tensor <paramref name="name"/> of <paramref name="shape"/>; returns its offset (0 when only counting).</summary>
    public abstract int Add(string name, params long[] shape);

    /// <summary>A GPT-2 Conv1D module: weight [in, out], then bias [out].</summary>
    public LinearGroup Conv1D(string module, long inDim, long outDim)
    {
        int w = Add(module + ".weight", inDim, outDim);
        int b = Add(module + ".bias", outDim);
        return new LinearGroup(w, b, (int)inDim, (int)outDim, true, [new LinearPart(module, 0, (int)outDim)]);
    }

    /// <summary>nn.Linear modules sharing an input, weights [out, in] back to back so one GEMM computes them all.</summary>
    public LinearGroup LinearRows(long inDim, params (string Module, long Out)[] parts)
    {
        int first = 0;
        long column = 0;
        var result = new LinearPart[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            int offset = Add(parts[i].Module + ".weight", parts[i].Out, inDim);
            if (i == 0) first = offset;
            result[i] = new LinearPart(parts[i].Module, (int)column, (int)parts[i].Out);
            column += parts[i].Out;
        }

        return new LinearGroup(first, -1, (int)inDim, (int)column, false, result);
    }
}
