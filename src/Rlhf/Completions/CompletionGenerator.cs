using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Completions;

/// <summary>A prompt to complete; <see cref="PromptId"/> defaults to "p{line}" when the file has none.</summary>
public sealed record PromptRecord(string PromptId, string Prompt);

/// <summary>One prompt's completions in the order labelers see them; Permutation[j] is the sample index shown at position j.</summary>
public sealed record GeneratedCompletionSet(string PromptId, string Prompt, IReadOnlyList<string> Ids, IReadOnlyList<string> Texts, IReadOnlyList<int> Permutation);

/// <summary>
/// Samples k completions per prompt from a model and shuffles them per row, so labelers cannot tell which sample came
/// from where; the hidden permutation is kept for audit. Sample j of a prompt uses the generation seed
/// seed + 1000003·promptIndex + j, and the shuffle of row i a generator seeded from (seed, i): the same inputs and seed
/// give the same file.
/// </summary>
public static class CompletionGenerator
{
    /// <summary>Completions per prompt when the caller does not say (the labeling app shows k at once).</summary>
    public const int DefaultK = 4;

    /// <summary>Sampling settings when the caller does not say: 64 new tokens, temperature 1, no top-k/top-p filter, seed 0.</summary>
    public static GenerationOptions DefaultOptions { get; } = new(MaxNewTokens: 64);

    /// <summary>prompts.jsonl: {"prompt_id"? (string), "prompt" (string)} per line; duplicate ids are an error.</summary>
    public static List<PromptRecord> ReadPrompts(string path)
    {
        var result = new List<PromptRecord>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in JsonLines.Read(path))
        {
            string prompt = line.RequireString("prompt");
            string id = $"p{line.Line}";
            if (line.TryGet("prompt_id", out var v))
            {
                if (v.ValueKind != System.Text.Json.JsonValueKind.String) throw line.Error("\"prompt_id\" must be a string");
                id = v.GetString()!;
            }

            if (!seen.Add(id)) throw line.Error($"duplicate prompt_id \"{id}\"");
            result.Add(new PromptRecord(id, prompt));
        }

        if (result.Count == 0) throw new InvalidInputException($"{path}: no prompts");
        return result;
    }

    /// <summary>
    /// k samples per prompt (BOS + prompt tokens, <paramref name="options"/> for sampling; its Seed is the base seed),
    /// decoded without the prompt and stopping at EOS (the tokenizer's, and the ids of the model's eos_token_id list,
    /// <see cref="TransformerConfig.EosTokenIds"/>), shown in a seeded random order with ids "c1".."ck".
    /// <paramref name="onPrompt"/> gets the number of prompts done after each one (progress).
    /// </summary>
    public static List<GeneratedCompletionSet> Generate(TransformerModel model, ITokenizer tokenizer, IReadOnlyList<PromptRecord> prompts, int k, GenerationOptions options, Action<int>? onPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        return Generate(new Generator(model).Generate, tokenizer, prompts, k, options with { EosTokenIds = model.Config.EosTokenIds }, onPrompt);
    }

    /// <summary>
    /// As the overload above with any sampler (e.g. a device's <c>Rlhf.Compute.DeviceGenerator</c>) behind
    /// <paramref name="generate"/>; rows stop at the tokenizer's EOS and at <paramref name="options"/>' EosTokenIds (pass
    /// the model's <see cref="TransformerConfig.EosTokenIds"/>).
    /// </summary>
    public static List<GeneratedCompletionSet> Generate(Func<IReadOnlyList<int[]>, GenerationOptions, GenerationResult> generate, ITokenizer tokenizer, IReadOnlyList<PromptRecord> prompts, int k, GenerationOptions options, Action<int>? onPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(generate);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        if (k < 2) throw new ArgumentOutOfRangeException(nameof(k), k, "need at least 2 completions per prompt to rank.");
        var result = new List<GeneratedCompletionSet>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            var p = prompts[i];
            var body = tokenizer.Encode(p.Prompt);
            var row = new int[body.Length + (tokenizer.BosId.HasValue ? 1 : 0)];
            if (tokenizer.BosId is int bos) row[0] = bos;
            body.CopyTo(row, row.Length - body.Length);
            if (row.Length == 0) throw new ArgumentException($"prompt {i} ('{p.PromptId}') is empty and the tokenizer has no BOS.", nameof(prompts));
            var samples = new string[k];
            for (int j = 0; j < k; j++)
            {
                // One row per call: the sample depends only on its own seed, not on what else is in the batch.
                var sampling = options with { Seed = options.Seed + 1000003UL * (ulong)i + (ulong)j, EosTokenId = tokenizer.EosId ?? -1, PadTokenId = TokenizerLoader.PadId(tokenizer) };
                var g = generate([row], sampling);
                samples[j] = tokenizer.Decode(g.TextTokens(0, sampling));
            }

            var perm = new int[k];
            for (int j = 0; j < k; j++) perm[j] = j;
            Rlhf.Reward.DataSplit.Shuffle(perm, options.Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(i + 1)));
            var ids = new string[k];
            var texts = new string[k];
            for (int j = 0; j < k; j++)
            {
                ids[j] = $"c{j + 1}";
                texts[j] = samples[perm[j]];
            }

            result.Add(new GeneratedCompletionSet(p.PromptId, p.Prompt, ids, texts, perm));
            onPrompt?.Invoke(i + 1);
        }

        return result;
    }

    /// <summary>
    /// completions.jsonl: {"prompt_id", "prompt", "completions": [{"id", "text"}], "permutation": [sample index per shown
    /// completion], "generation": {settings}} per prompt (readable by <see cref="Feedback.CompletionSets.Load"/>).
    /// </summary>
    public static void Write(string path, IReadOnlyList<GeneratedCompletionSet> sets, GenerationOptions options, string model, bool overwrite = true) =>
        JsonLines.Write(path, sets, (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt_id", s.PromptId);
            w.WriteString("prompt", s.Prompt);
            w.WriteStartArray("completions");
            for (int j = 0; j < s.Ids.Count; j++)
            {
                w.WriteStartObject();
                w.WriteString("id", s.Ids[j]);
                w.WriteString("text", s.Texts[j]);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("permutation");
            foreach (int x in s.Permutation) w.WriteNumberValue(x);
            w.WriteEndArray();
            w.WriteStartObject("generation");
            w.WriteString("model", model);
            w.WriteNumber("max_new_tokens", options.MaxNewTokens);
            w.WriteNumber("temperature", options.Temperature);
            w.WriteNumber("top_k", options.TopK);
            w.WriteNumber("top_p", options.TopP);
            w.WriteNumber("seed", options.Seed);
            w.WriteEndObject();
            w.WriteEndObject();
        }, overwrite);
}
