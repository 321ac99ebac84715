using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Ppo;

/// <summary>
/// A sequence classifier (a causal LM with a <see cref="HeadPooling.LastToken"/> classification head): as an
/// <see cref="IProbabilityScorer"/> it gives softmax(logits)[UnwantedClass]; as an <see cref="IRewardFunction"/> the
/// logit of <see cref="WantedClass"/> (TRL's sentiment/toxicity recipe). Texts longer than <see cref="MaxTokens"/>
/// keep their last tokens. Scores the response only (the prompt is ignored), as the tutorial scores outputs.
/// </summary>
public sealed class ClassifierScorer : IProbabilityScorer, IRewardFunction
{
    private readonly TransformerModel model;
    private readonly ScoreHead head;
    private readonly ITokenizer tokenizer;

    public ClassifierScorer(TransformerModel model, ScoreHead head, ITokenizer tokenizer, int unwantedClass, int wantedClass, int maxTokens = 128, int batchSize = 16)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.head = head ?? throw new ArgumentNullException(nameof(head));
        this.tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        if (head.Pooling != HeadPooling.LastToken || head.ModelDim != model.Config.ModelDim)
            throw new ArgumentException("the head must pool the last token and match the model width.", nameof(head));
        ArgumentOutOfRangeException.ThrowIfNegative(unwantedClass);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(unwantedClass, head.Outputs);
        ArgumentOutOfRangeException.ThrowIfNegative(wantedClass);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(wantedClass, head.Outputs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        if (tokenizer.VocabSize != model.Config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens, the classifier's vocabulary {model.Config.VocabSize}.", nameof(tokenizer));
        UnwantedClass = unwantedClass;
        WantedClass = wantedClass;
        MaxTokens = Math.Min(maxTokens, model.Config.ContextLength);
        BatchSize = batchSize;
    }

    public int UnwantedClass { get; }

    public int WantedClass { get; }

    public int MaxTokens { get; }

    public int BatchSize { get; }

    /// <summary>Class logits [texts.Count, classes].</summary>
    public float[] Logits(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        int c = head.Outputs;
        var result = new float[texts.Count * c];
        for (int start = 0; start < texts.Count; start += BatchSize)
        {
            int k = Math.Min(BatchSize, texts.Count - start);
            var ids = new int[k][];
            int seq = 1;
            for (int i = 0; i < k; i++)
            {
                var t = tokenizer.Encode(texts[start + i] ?? "");
                if (tokenizer.BosId is int bos) t = [bos, .. t];
                if (t.Length == 0) t = [tokenizer.EosId ?? 0];
                if (t.Length > MaxTokens) t = t[^MaxTokens..];
                ids[i] = t;
                seq = Math.Max(seq, t.Length);
            }

            var tokens = new int[k * seq];
            var mask = new float[k * seq];
            for (int i = 0; i < k; i++)
            {
                int pad = seq - ids[i].Length;
                for (int j = 0; j < ids[i].Length; j++)
                {
                    tokens[i * seq + pad + j] = ids[i][j];
                    mask[i * seq + pad + j] = 1f;
                }
            }

            model.Forward(tokens, mask, k, seq, computeLogits: false, useAdapter: false);
            head.Forward(model.FinalHidden, mask, k, seq, result.AsSpan(start * c, k * c));
        }

        return result;
    }

    public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (probabilities.Length != texts.Count) throw new ArgumentException($"probabilities has {probabilities.Length} elements, needs {texts.Count}.", nameof(probabilities));
        var logits = Logits(texts);
        int c = head.Outputs;
        for (int i = 0; i < texts.Count; i++)
        {
            var z = logits.AsSpan(i * c, c);
            float max = System.Numerics.Tensors.TensorPrimitives.Max(z);
            double sum = 0;
            foreach (float x in z) sum += Math.Exp(x - max);
            probabilities[i] = (float)(Math.Exp(z[UnwantedClass] - max) / sum);
        }
    }

    public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
    {
        ArgumentNullException.ThrowIfNull(responses);
        if (rewards.Length != responses.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {responses.Count}.", nameof(rewards));
        var logits = Logits(responses);
        for (int i = 0; i < responses.Count; i++) rewards[i] = logits[i * head.Outputs + WantedClass];
    }
}
