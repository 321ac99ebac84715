using Rlhf.Model;

namespace Rlhf.Reward;

/// <summary>
/// A trunk with a last-token <see cref="ScoreHead"/>: token rows → head outputs, forward only, in fixed-size
/// batches (so results do not depend on how many rows are scored together beyond padding, which is masked).
/// </summary>
public sealed class SequenceScorer
{
    private int[] tokens = [];
    private float[] mask = [];
    private int[] indices = [];

    public SequenceScorer(TransformerModel model, ScoreHead head, TokenRows rows, int batchSize = 16)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Head = head ?? throw new ArgumentNullException(nameof(head));
        Rows = rows ?? throw new ArgumentNullException(nameof(rows));
        if (head.Pooling != HeadPooling.LastToken) throw new ArgumentException("the head must pool the last token.", nameof(head));
        if (head.ModelDim != model.Config.ModelDim) throw new ArgumentException($"head width {head.ModelDim} differs from the model's {model.Config.ModelDim}.", nameof(head));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        BatchSize = batchSize;
    }

    public TransformerModel Model { get; }

    public ScoreHead Head { get; }

    public TokenRows Rows { get; }

    public int BatchSize { get; }

    /// <summary>outputs [rows.Count, Head.Outputs] = head(trunk(rows[i])) at each row's last token.</summary>
    public void Score(IReadOnlyList<int[]> rows, Span<float> outputs)
    {
        ArgumentNullException.ThrowIfNull(rows);
        int c = Head.Outputs;
        if (outputs.Length != rows.Count * c) throw new ArgumentException($"outputs has {outputs.Length} elements, needs {rows.Count * c}.", nameof(outputs));
        if (indices.Length < BatchSize) indices = new int[BatchSize];
        for (int start = 0; start < rows.Count; start += BatchSize)
        {
            int b = Math.Min(BatchSize, rows.Count - start);
            for (int i = 0; i < b; i++) indices[i] = start + i;
            int seq = TokenRows.Pack(rows, indices.AsSpan(0, b), Rows.Padding, Rows.PadId, ref tokens, ref mask);
            Model.Forward(tokens.AsSpan(0, b * seq), mask.AsSpan(0, b * seq), b, seq, computeLogits: false);
            Head.Forward(Model.FinalHidden, mask.AsSpan(0, b * seq), b, seq, outputs.Slice(start * c, b * c));
        }
    }

    /// <summary>Encodes (prompts[i], responses[i]) with <see cref="Rows"/>.</summary>
    public List<int[]> Encode(IReadOnlyList<string> prompts, IReadOnlyList<string> responses)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        if (prompts.Count != responses.Count) throw new ArgumentException($"{prompts.Count} prompts but {responses.Count} responses.", nameof(responses));
        var list = new List<int[]>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++) list.Add(Rows.Encode(prompts[i], responses[i]));
        return list;
    }
}
