namespace Rlhf.Model;

/// <summary>
/// Sampling settings. Temperature 0 decodes greedily (argmax, no randomness). TopK 0 and TopP 1 disable those filters.
/// A row stops after emitting <see cref="EosTokenId"/> (if ≥ 0) or any of <see cref="EosTokenIds"/> (a checkpoint's
/// config.json list, <see cref="TransformerConfig.EosTokenIds"/>: Llama 3 ends turns with more than one token), or when
/// its generated tokens end with one of <see cref="StopSequences"/>; the stopping tokens are kept in the output.
/// </summary>
public sealed record GenerationOptions(
    int MaxNewTokens,
    float Temperature = 1f,
    int TopK = 0,
    float TopP = 1f,
    int EosTokenId = -1,
    IReadOnlyList<int[]>? StopSequences = null,
    ulong Seed = 0,
    int PadTokenId = 0,
    bool UseAdapter = true,
    IReadOnlyList<int>? EosTokenIds = null)
{
    /// <summary>True when <paramref name="token"/> ends a row: it is <see cref="EosTokenId"/> or one of <see cref="EosTokenIds"/>.</summary>
    public bool IsEos(int token)
    {
        if (token == EosTokenId) return true;
        if (EosTokenIds is null) return false;
        for (int i = 0; i < EosTokenIds.Count; i++)
        {
            if (EosTokenIds[i] == token) return true;
        }

        return false;
    }
}

/// <summary>
/// Generated continuations: Tokens [batch, maxNew] (PadTokenId after a row stops), Mask [batch, maxNew] (1 on generated
/// tokens), LogProbs [batch, maxNew]: log-probability of each token under the temperature-scaled distribution
/// before top-k/top-p filtering (raw logits when greedy), as TRL's PPO recomputes them; 0 where masked.
/// PromptTokens/PromptMask [batch, PromptLength] are the left-padded prompts the continuations follow.
/// </summary>
public sealed record GenerationResult(
    int Batch, int MaxNewTokens, int[] Tokens, float[] Mask, float[] LogProbs, int[] Lengths,
    int PromptLength, int[] PromptTokens, float[] PromptMask)
{
    /// <summary>
    /// Prompt and continuation side by side: tokens/mask [batch, PromptLength + MaxNewTokens] (left-padded prompt,
    /// then the generated tokens, mask 0 after a row stopped), the layout a scoring or PPO forward takes.
    /// </summary>
    public (int[] Tokens, float[] Mask, int Seq) Concatenate()
    {
        int seq = PromptLength + MaxNewTokens;
        var tokens = new int[Batch * seq];
        var mask = new float[Batch * seq];
        for (int b = 0; b < Batch; b++)
        {
            Array.Copy(PromptTokens, b * PromptLength, tokens, b * seq, PromptLength);
            Array.Copy(PromptMask, b * PromptLength, mask, b * seq, PromptLength);
            Array.Copy(Tokens, b * MaxNewTokens, tokens, b * seq + PromptLength, MaxNewTokens);
            Array.Copy(Mask, b * MaxNewTokens, mask, b * seq + PromptLength, MaxNewTokens);
        }

        return (tokens, mask, seq);
    }

    /// <summary>
    /// Row <paramref name="row"/>'s generated tokens to decode as text: all <see cref="Lengths"/>[row] of them, less a
    /// final id from <paramref name="options"/>' <see cref="GenerationOptions.EosTokenIds"/> other than its
    /// <see cref="GenerationOptions.EosTokenId"/>. Such an id (Llama 3's &lt;|eot_id|&gt;) is a special token the
    /// tokenizer may spell out; the tokenizer's own EOS already decodes to nothing.
    /// </summary>
    public ReadOnlySpan<int> TextTokens(int row, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        int n = Lengths[row];
        if (n > 0 && options.EosTokenIds is not null)
        {
            int last = Tokens[row * MaxNewTokens + n - 1];
            if (last != options.EosTokenId && options.IsEos(last)) n--;
        }

        return Tokens.AsSpan(row * MaxNewTokens, n);
    }
}

/// <summary>Batched autoregressive decoding with a KV cache over left-padded prompts.</summary>
public sealed class Generator : IDecodeStep
{
    private readonly TransformerModel model;
    private readonly DecodingLoop loop = new();
    private KvCache? cache;
    private bool useAdapter;

    public Generator(TransformerModel model) => this.model = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>
    /// Generates up to <c>options.MaxNewTokens</c> tokens after each prompt (prompts are left-padded to the longest;
    /// each must be non-empty and prompt + MaxNewTokens must fit the context). Same seed and inputs give the same result.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        useAdapter = options.UseAdapter;
        return loop.Run(prompts, options, model.Config.VocabSize, model.Config.ContextLength, this);
    }

    void IDecodeStep.Prefill(int[] tokens, float[] mask, int batch, int promptLen, int total, Span<float> logits)
    {
        var c = model.Config;
        if (cache is null || cache.Batch != batch || cache.Capacity < total) cache = new KvCache(c, batch, Math.Max(total, Math.Min(c.ContextLength, cache?.Capacity ?? 0)));
        else cache.Reset();
        model.ForwardCached(tokens, mask, promptLen, cache, logits, lastOnly: true, useAdapter);
    }

    void IDecodeStep.Step(int[] tokens, float[] mask, Span<float> logits) =>
        model.ForwardCached(tokens, mask, 1, cache!, logits, lastOnly: true, useAdapter);
}
