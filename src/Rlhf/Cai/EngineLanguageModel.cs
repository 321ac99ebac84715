using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Cai;

/// <summary>
/// <see cref="ICaiLanguageModel"/> over the engine: KV-cache generation in batches, teacher-forced option scoring.
/// Prompts start with the tokenizer's BOS (when it has one). A prompt too long for the context keeps BOS and its last
/// tokens (the request and the start of the reply sit at the end of every CAI prompt).
/// </summary>
public sealed class EngineLanguageModel : ICaiLanguageModel
{
    private readonly Generator generator;
    private float[] rowLogits = [];

    /// <summary>Prompts generated together when the caller does not say.</summary>
    public const int DefaultBatchSize = 8;

    public EngineLanguageModel(TransformerModel model, ITokenizer tokenizer, int batchSize = DefaultBatchSize)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            throw new ArgumentException(TokenizerVocabulary.Mismatch(tokenizer, model.Config.VocabSize), nameof(tokenizer));
        }

        BatchSize = batchSize;
        generator = new Generator(model);
    }

    public TransformerModel Model { get; }

    public ITokenizer Tokenizer { get; }

    public int BatchSize { get; }

    /// <summary>Prompts longer than this many tokens were cut (kept their end) since construction.</summary>
    public int TruncatedPrompts { get; private set; }

    /// <summary>Batches of <see cref="BatchSize"/> prompts; batch i samples with seed StreamSeed(seed, i, 0).</summary>
    public IReadOnlyList<string> Generate(IReadOnlyList<string> prompts, CaiSampling sampling, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(sampling);
        int ctx = Model.Config.ContextLength;
        if (sampling.MaxNewTokens >= ctx) throw new ArgumentOutOfRangeException(nameof(sampling), sampling.MaxNewTokens, $"MaxNewTokens must be below the context length {ctx}");
        var result = new string[prompts.Count];
        for (int start = 0, batchIndex = 0; start < prompts.Count; start += BatchSize, batchIndex++)
        {
            int count = Math.Min(BatchSize, prompts.Count - start);
            var encoded = new int[count][];
            for (int i = 0; i < count; i++) encoded[i] = EncodePrompt(prompts[start + i], ctx - sampling.MaxNewTokens);
            var options = new GenerationOptions(
                sampling.MaxNewTokens, sampling.Temperature, sampling.TopK, sampling.TopP,
                EosTokenId: Tokenizer.EosId ?? -1, Seed: PrincipleSampler.StreamSeed(seed, batchIndex, 0), EosTokenIds: Model.Config.EosTokenIds);
            var g = generator.Generate(encoded, options);
            for (int i = 0; i < count; i++) result[start + i] = Tokenizer.Decode(g.TextTokens(i, options));
        }

        return result;
    }

    public double[] OptionLogProbs(string prompt, IReadOnlyList<string> options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Count == 0) throw new ArgumentException("no options", nameof(options));
        var optionTokens = new int[options.Count][];
        int longest = 0;
        for (int k = 0; k < options.Count; k++)
        {
            optionTokens[k] = Tokenizer.Encode(options[k] ?? throw new ArgumentException($"option {k} is null", nameof(options)));
            if (optionTokens[k].Length == 0) throw new ArgumentException($"option {k} ('{options[k]}') has no tokens", nameof(options));
            longest = Math.Max(longest, optionTokens[k].Length);
        }

        int ctx = Model.Config.ContextLength, v = Model.Config.VocabSize;
        if (longest >= ctx) throw new ArgumentException($"an option has {longest} tokens, the context is {ctx}", nameof(options));
        var p = EncodePrompt(prompt, ctx - longest);
        int batch = options.Count, seq = p.Length + longest;
        var tokens = new int[batch * seq];
        var mask = new float[batch * seq];
        for (int b = 0; b < batch; b++)
        {
            p.CopyTo(tokens, b * seq);
            optionTokens[b].CopyTo(tokens, b * seq + p.Length);
            mask.AsSpan(b * seq, p.Length + optionTokens[b].Length).Fill(1f);
        }

        Model.Forward(tokens, mask, batch, seq, computeLogits: false);
        if (rowLogits.Length != v) rowLogits = new float[v];
        var result = new double[batch];
        for (int b = 0; b < batch; b++)
        {
            double sum = 0;
            for (int j = 0; j < optionTokens[b].Length; j++)
            {
                // The logits at position t predict the token at t + 1.
                Model.ComputeLogits(b * seq + p.Length + j - 1, 1, rowLogits);
                sum += OptionPreference.LogSoftmaxAt(rowLogits, optionTokens[b][j]);
            }

            result[b] = sum;
        }

        return result;
    }

    private int[] EncodePrompt(string text, int maxTokens)
    {
        var body = Tokenizer.Encode(text);
        int bos = Tokenizer.BosId.HasValue ? 1 : 0;
        if (body.Length + bos == 0) throw new ArgumentException("empty prompt and the tokenizer has no BOS", nameof(text));
        int room = maxTokens - bos;
        if (room < 0 || (room == 0 && bos == 0)) throw new ArgumentException($"no room for the prompt: {maxTokens} tokens available", nameof(maxTokens));
        int keep = Math.Min(body.Length, room);
        if (keep < body.Length) TruncatedPrompts++;
        var r = new int[bos + keep];
        if (bos == 1) r[0] = Tokenizer.BosId!.Value;
        Array.Copy(body, body.Length - keep, r, bos, keep);
        return r;
    }
}
