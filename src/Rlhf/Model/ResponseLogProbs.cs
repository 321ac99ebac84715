using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Model;

/// <summary>Log-probabilities of sampled responses under a model: what the evaluation's KL to the reference is made of.</summary>
public interface IResponseLogProbs
{
    /// <summary>
    /// destination [batch·maxNewTokens] ← log π(response token | prompt, earlier response tokens) at
    /// <paramref name="temperature"/>, for every response position of <paramref name="result"/> (masked ones included:
    /// callers skip them), with the model's adapter when <paramref name="useAdapter"/>.
    /// </summary>
    void LogProbs(GenerationResult result, float temperature, bool useAdapter, Span<float> destination);
}

/// <summary><see cref="IResponseLogProbs"/> on the CPU engine: one forward of the whole batch, then the LM head and the
/// token statistics one response at a time ([maxNewTokens, V] of logits at once, never [batch·seq, V]).</summary>
public sealed class ResponseLogProbs(TransformerModel model) : IResponseLogProbs
{
    private float[] logits = [];
    private float[] logSumExp = [];

    public void LogProbs(GenerationResult result, float temperature, bool useAdapter, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(result);
        int b = result.Batch, p = result.PromptLength, r = result.MaxNewTokens, v = model.Config.VocabSize;
        if (destination.Length != b * r)
            throw new ArgumentException($"destination has {destination.Length} elements, the responses {b * r}.", nameof(destination));
        var (tokens, mask, seq) = result.Concatenate();
        if (logits.Length < r * v) logits = new float[r * v];
        if (logSumExp.Length < r) logSumExp = new float[r];
        model.Forward(tokens, mask, b, seq, computeLogits: false, useAdapter: useAdapter);
        for (int i = 0; i < b; i++)
        {
            model.ComputeLogits(i * seq + p - 1, r, logits.AsSpan(0, r * v));
            TokenStatistics.LogProbs(logits.AsSpan(0, r * v), result.Tokens.AsSpan(i * r, r), v, temperature, destination.Slice(i * r, r), logSumExp.AsSpan(0, r));
        }
    }
}
