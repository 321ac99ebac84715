using System.Globalization;
using System.Text;
using System.Text.Json;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Ppo;

/// <summary>Sampling settings of an evaluation.</summary>
public sealed record EvalOptions
{
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sampling temperature (0 = greedy).</summary>
    public float Temperature { get; init; } = 1f;

    public int BatchSize { get; init; } = 16;

    public ulong Seed { get; init; } = 1234;
}

/// <summary>One model's evaluation over a prompt set.</summary>
/// <param name="Label">"before", "after", ...</param>
/// <param name="MeanToxicity">Mean probability of the unwanted class over the responses.</param>
/// <param name="MeanReward">Mean reward over the responses (NaN without a reward function).</param>
/// <param name="MeanKl">Mean over responses of Σ_t (log π − log π_ref) on the sampled tokens (0 for the reference itself).</param>
public sealed record EvalResult(string Label, int Count, double MeanToxicity, double MeanReward, double MeanKl, double MeanResponseLength);

/// <summary>The tutorial's before/after comparison: sample a response per prompt, score toxicity, reward and KL to the reference.</summary>
public static class PpoEvaluation
{
    /// <summary>
    /// Samples one response per prompt from <paramref name="model"/> (with its adapter when <paramref name="useAdapter"/>),
    /// then averages the scorer's unwanted-class probability, the reward, and the summed per-token k1 KL against the
    /// reference (the same base with the adapter off when <paramref name="reference"/> is null).
    /// <paramref name="onBatch"/> gets the number of prompts done after each batch (progress). <paramref name="generate"/>
    /// samples instead of a <see cref="Generator"/> on <paramref name="model"/> when given (e.g. the same model on a device),
    /// and <paramref name="responseLogProbs"/> scores the responses for the KL instead of <paramref name="model"/>'s CPU
    /// forward passes (the reference is then its adapter-off base, so <paramref name="reference"/> must be null).
    /// </summary>
    public static EvalResult Evaluate(
        string label, TransformerModel model, bool useAdapter, ITokenizer tokenizer, IReadOnlyList<string> prompts,
        IProbabilityScorer scorer, IRewardFunction? reward, EvalOptions options, TransformerModel? reference = null, Action<int>? onBatch = null,
        Func<IReadOnlyList<int[]>, GenerationOptions, GenerationResult>? generate = null, IResponseLogProbs? responseLogProbs = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(options);
        if (prompts.Count == 0) throw new InvalidInputException("no prompts to evaluate.");
        if (tokenizer.VocabSize != model.Config.VocabSize)
            throw new InvalidInputException(TokenizerVocabulary.Mismatch(tokenizer, model.Config.VocabSize) + ".");
        if (responseLogProbs != null && reference != null)
            throw new ArgumentException("responseLogProbs scores against the adapter-off base: pass no separate reference.", nameof(reference));
        reference ??= model;
        bool sameAsReference = ReferenceEquals(reference, model) && (!useAdapter || model.Adapter is null);
        generate ??= new Generator(model).Generate;
        var policyLogProbs = responseLogProbs ?? new ResponseLogProbs(model);
        var referenceLogProbs = responseLogProbs ?? (ReferenceEquals(reference, model) ? policyLogProbs : new ResponseLogProbs(reference));
        int eos = tokenizer.EosId ?? -1;
        double tox = 0, rew = 0, kl = 0, len = 0;
        for (int start = 0; start < prompts.Count; start += options.BatchSize)
        {
            int k = Math.Min(options.BatchSize, prompts.Count - start);
            var ids = new int[k][];
            var ps = new string[k];
            for (int i = 0; i < k; i++)
            {
                ps[i] = prompts[start + i];
                var t = tokenizer.Encode(ps[i]);
                ids[i] = tokenizer.BosId is int bos ? [bos, .. t] : t;
                int room = model.Config.ContextLength - options.MaxNewTokens;
                if (ids[i].Length > room) ids[i] = ids[i][^room..];
            }

            var sampling = new GenerationOptions(options.MaxNewTokens, options.Temperature, EosTokenId: eos,
                Seed: options.Seed + (ulong)start, PadTokenId: Math.Max(0, eos), UseAdapter: useAdapter, EosTokenIds: model.Config.EosTokenIds);
            var res = generate(ids, sampling);
            var texts = new string[k];
            for (int i = 0; i < k; i++)
            {
                texts[i] = tokenizer.Decode(res.TextTokens(i, sampling));
                len += res.Lengths[i];
            }

            var probs = new float[k];
            scorer.Probabilities(texts, probs);
            foreach (float p in probs) tox += p;
            if (reward != null)
            {
                var r = new float[k];
                reward.Score(ps, texts, r);
                foreach (float x in r) rew += x;
            }

            if (!sameAsReference) kl += SummedKl(policyLogProbs, useAdapter, referenceLogProbs, res, options.Temperature);
            onBatch?.Invoke(start + k);
        }

        int n = prompts.Count;
        return new EvalResult(label, n, tox / n, reward is null ? double.NaN : rew / n, kl / n, len / n);
    }

    /// <summary>A Markdown table of the results, one row each.</summary>
    public static string Table(IReadOnlyList<EvalResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sb = new StringBuilder();
        sb.AppendLine("| model | prompts | mean toxicity | mean reward | KL to reference | mean length |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in results)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Label} | {r.Count} | {r.MeanToxicity:F4} | {r.MeanReward:F4} | {r.MeanKl:F4} | {r.MeanResponseLength:F1} |"));
        return sb.ToString();
    }

    /// <summary>The file names of <see cref="WriteReport"/>.</summary>
    public const string MarkdownFileName = "eval.md", JsonFileName = "eval.json";

    /// <summary>Writes eval.md (the table) and eval.json (the results) into <paramref name="directory"/>, each atomically.</summary>
    public static void WriteReport(string directory, IReadOnlyList<EvalResult> results)
    {
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, MarkdownFileName), Table(results));
        AtomicFile.WriteAllText(Path.Combine(directory, JsonFileName), JsonSerializer.Serialize(results, new JsonSerializerOptions(PpoRun.Json) { WriteIndented = true }));
    }

    /// <summary>Σ over the valid response tokens of log π − log π_ref (k1), the reference being the adapter-off pass.</summary>
    private static double SummedKl(IResponseLogProbs policy, bool useAdapter, IResponseLogProbs reference, GenerationResult res, float temperature)
    {
        float t = temperature > 0 ? temperature : 1f;
        int n = res.Batch * res.MaxNewTokens;
        var refLogp = new float[n];
        var logp = new float[n];
        reference.LogProbs(res, t, useAdapter: false, refLogp);
        policy.LogProbs(res, t, useAdapter, logp);
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            if (res.Mask[i] != 0f) sum += logp[i] - refLogp[i];
        }

        return sum;
    }
}
