using Rlhf.Cai;
using Rlhf.Tokenizers;
using Rlhf.Training;

namespace Rlhf.Sft;

/// <summary>
/// Turns examples into token rows: [BOS] + chat-formatted prompt (ending with the assistant prefix), then the response
/// and EOS. LossMask is 1 on the response and EOS tokens only, so the prompt is context, never a target. A row longer
/// than <see cref="MaxSeq"/> keeps BOS, the end of the prompt and as much of the response as fits (at least half).
/// </summary>
public sealed class SftBatcher
{
    private readonly ITokenizer tokenizer;
    private readonly ChatFormat chat;

    public SftBatcher(ITokenizer tokenizer, ChatFormat chat, int maxSeq)
    {
        this.tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        this.chat = chat ?? throw new ArgumentNullException(nameof(chat));
        if (maxSeq < 4) throw new ArgumentOutOfRangeException(nameof(maxSeq), maxSeq, "maxSeq must be at least 4");
        MaxSeq = maxSeq;
    }

    public int MaxSeq { get; }

    /// <summary>Token ids of one example and how many of them (from the start) are prompt.</summary>
    public (int[] Tokens, int PromptLength) Encode(SftExample example)
    {
        var prompt = tokenizer.Encode(chat.RenderPrompt(example.Prompt));
        var response = tokenizer.Encode(example.Response);
        int bos = tokenizer.BosId.HasValue ? 1 : 0, eos = tokenizer.EosId.HasValue ? 1 : 0;
        int respLen = response.Length + eos;
        int promptLen = prompt.Length;
        if (bos + promptLen + respLen > MaxSeq)
        {
            int room = MaxSeq - bos;
            respLen = Math.Min(respLen, Math.Max(room / 2, room - promptLen));
            promptLen = Math.Min(promptLen, room - respLen);
        }

        if (respLen == 0) throw new ArgumentException("example has an empty response and the tokenizer has no EOS: nothing to learn", nameof(example));
        var t = new int[bos + promptLen + respLen];
        int k = 0;
        if (bos == 1) t[k++] = tokenizer.BosId!.Value;
        Array.Copy(prompt, prompt.Length - promptLen, t, k, promptLen);
        k += promptLen;
        int copy = Math.Min(response.Length, respLen);
        Array.Copy(response, 0, t, k, copy);
        k += copy;
        if (k < t.Length) t[k] = tokenizer.EosId!.Value;
        return (t, bos + promptLen);
    }

    /// <summary>The examples as one right-padded batch: tokens/mask/loss mask [count, longest].</summary>
    public TokenBatch Batch(IReadOnlyList<SftExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("no examples", nameof(examples));
        var rows = new (int[] Tokens, int PromptLength)[examples.Count];
        int seq = 0;
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = Encode(examples[i]);
            seq = Math.Max(seq, rows[i].Tokens.Length);
        }

        var tokens = new int[rows.Length * seq];
        var mask = new float[rows.Length * seq];
        var loss = new float[rows.Length * seq];
        for (int b = 0; b < rows.Length; b++)
        {
            var (t, p) = rows[b];
            t.CopyTo(tokens, b * seq);
            mask.AsSpan(b * seq, t.Length).Fill(1f);
            loss.AsSpan(b * seq + p, t.Length - p).Fill(1f);
        }

        return new TokenBatch(tokens, mask, loss, rows.Length, seq);
    }
}
