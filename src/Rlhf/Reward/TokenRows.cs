using Rlhf.Tokenizers;

namespace Rlhf.Reward;

/// <summary>Which side of a row the padding goes: Right keeps positions aligned at 0, Left aligns the last tokens.</summary>
public enum PaddingSide
{
    Right,
    Left,
}

/// <summary>
/// Text → token rows for sequence scoring (reward models, classifiers): BOS + prompt + response + EOS (each special
/// token when the tokenizer has one), truncated from the left so the end of the response survives, and packed into
/// padded [rows, seq] batches with a 0/1 mask. The closing EOS gives the last-token head the same query token on
/// every row, which is where HF reward models read too.
/// </summary>
public sealed class TokenRows
{
    private readonly ITokenizer tokenizer;

    public TokenRows(ITokenizer tokenizer, int maxLength, PaddingSide padding)
    {
        this.tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "must be at least 2.");
        MaxLength = maxLength;
        Padding = padding;
        PadId = TokenizerLoader.PadId(tokenizer);
    }

    public int MaxLength { get; }

    public PaddingSide Padding { get; }

    public int PadId { get; }

    /// <summary>
    /// Tokens of BOS + prompt + response + EOS, at most <see cref="MaxLength"/>: when longer, BOS and EOS are kept and
    /// the oldest text tokens are dropped. An empty prompt and response still give at least one token (the pad id when
    /// the tokenizer has neither BOS nor EOS).
    /// </summary>
    public int[] Encode(string prompt, string response)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(response);
        int[] p = prompt.Length == 0 ? [] : tokenizer.Encode(prompt);
        int[] r = response.Length == 0 ? [] : tokenizer.Encode(response);
        int bos = tokenizer.BosId.HasValue ? 1 : 0, eos = tokenizer.EosId.HasValue ? 1 : 0;
        int body = Math.Min(p.Length + r.Length, MaxLength - bos - eos);
        if (bos + body + eos == 0) return [PadId];
        var row = new int[bos + body + eos];
        if (bos == 1) row[0] = tokenizer.BosId!.Value;
        if (eos == 1) row[^1] = tokenizer.EosId!.Value;
        // Copy the last `body` tokens of p ++ r.
        int skip = p.Length + r.Length - body;
        int o = bos;
        for (int i = skip; i < p.Length; i++) row[o++] = p[i];
        for (int i = Math.Max(0, skip - p.Length); i < r.Length; i++) row[o++] = r[i];
        return row;
    }

    /// <summary>
    /// Packs rows[indices[i]] into tokens/mask [indices.Length, seq] (seq = the longest selected row), padded on
    /// <paramref name="padding"/> with <paramref name="padId"/> under mask 0. Grows the buffers when too small and
    /// returns seq; the first indices.Length·seq elements are written.
    /// </summary>
    public static int Pack(IReadOnlyList<int[]> rows, ReadOnlySpan<int> indices, PaddingSide padding, int padId, ref int[] tokens, ref float[] mask)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (indices.IsEmpty) throw new ArgumentException("no rows selected.", nameof(indices));
        int seq = 0;
        for (int i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)rows.Count) throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"indices[{i}] = {indices[i]} is outside [0, {rows.Count}).");
            int len = rows[indices[i]].Length;
            if (len == 0) throw new ArgumentException($"row {indices[i]} is empty.", nameof(rows));
            seq = Math.Max(seq, len);
        }

        int n = indices.Length * seq;
        if (tokens.Length < n) tokens = new int[n];
        if (mask.Length < n) mask = new float[n];
        for (int i = 0; i < indices.Length; i++)
        {
            var row = rows[indices[i]];
            var t = tokens.AsSpan(i * seq, seq);
            var m = mask.AsSpan(i * seq, seq);
            int start = padding == PaddingSide.Left ? seq - row.Length : 0;
            t.Fill(padId);
            m.Clear();
            row.CopyTo(t.Slice(start));
            m.Slice(start, row.Length).Fill(1f);
        }

        return seq;
    }
}
