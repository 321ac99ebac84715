using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Demo;

/// <summary>
/// The responses <see cref="PpoEvaluation.Evaluate"/> samples (same batching and seeds, so the same texts), kept for
/// the report's toxicity distribution and samples.jsonl.
/// </summary>
public static class EvalSamples
{
    public static List<string> Sample(TransformerModel model, bool useAdapter, ITokenizer tokenizer, IReadOnlyList<string> prompts, EvalOptions options)
    {
        var gen = new Generator(model);
        int eos = tokenizer.EosId ?? -1;
        var texts = new List<string>(prompts.Count);
        for (int start = 0; start < prompts.Count; start += options.BatchSize)
        {
            int k = Math.Min(options.BatchSize, prompts.Count - start);
            var ids = new int[k][];
            for (int i = 0; i < k; i++)
            {
                var t = tokenizer.Encode(prompts[start + i]);
                ids[i] = tokenizer.BosId is int bos ? [bos, .. t] : t;
                int room = model.Config.ContextLength - options.MaxNewTokens;
                if (ids[i].Length > room) ids[i] = ids[i][^room..];
            }

            var sampling = new GenerationOptions(options.MaxNewTokens, options.Temperature, EosTokenId: eos,
                Seed: options.Seed + (ulong)start, PadTokenId: Math.Max(0, eos), UseAdapter: useAdapter, EosTokenIds: model.Config.EosTokenIds);
            var res = gen.Generate(ids, sampling);
            for (int i = 0; i < k; i++) texts.Add(tokenizer.Decode(res.TextTokens(i, sampling)));
        }

        return texts;
    }

    public static double[] Toxicity(IProbabilityScorer scorer, IReadOnlyList<string> texts)
    {
        var p = new float[texts.Count];
        scorer.Probabilities(texts, p);
        return Array.ConvertAll(p, x => (double)x);
    }

    /// <summary>samples.jsonl: {prompt, before, before_toxicity, after, after_toxicity} per line.</summary>
    public static void Write(string path, IReadOnlyList<string> prompts, IReadOnlyList<string> before, double[] beforeTox, IReadOnlyList<string> after, double[] afterTox) =>
        JsonLines.Write(path, Enumerable.Range(0, prompts.Count), (w, i) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt", prompts[i]);
            w.WriteString("before", before[i]);
            w.WriteNumber("before_toxicity", beforeTox[i]);
            w.WriteString("after", after[i]);
            w.WriteNumber("after_toxicity", afterTox[i]);
            w.WriteEndObject();
        });
}
