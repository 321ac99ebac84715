using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Sft;
using Rlhf.Tokenizers;

namespace Rlhf.Cai;

/// <summary>
/// The CAI stages as file-to-file jobs (what `rlhf cai …` and `rlhf sft` run, and the built-in stages of
/// <see cref="CaiPipeline"/>): load models and inputs, run the library stage, write the outputs.
/// </summary>
public static class CaiJobs
{
    public const string RevisionsFile = "revisions.jsonl";
    public const string SftDataFile = "sft.jsonl";

    /// <summary>A tokenizer by spec: "gpt2" (GPT-2 BPE), "bytes" (<see cref="ByteTokenizer"/>), else a llama2.c tok*.bin path.</summary>
    public static ITokenizer LoadTokenizer(string spec, int vocabSize)
    {
        if (string.Equals(spec, "gpt2", StringComparison.OrdinalIgnoreCase)) return new Gpt2Tokenizer();
        if (string.Equals(spec, "bytes", StringComparison.OrdinalIgnoreCase)) return new ByteTokenizer();
        if (!File.Exists(spec)) throw new InvalidInputException($"{spec}: tokenizer not found (a llama2.c tok*.bin file, \"gpt2\" or \"bytes\")");
        return Llama2cTokenizer.Load(spec, vocabSize);
    }

    /// <summary>A model (Hugging Face folder or llama2.c .bin) and its tokenizer.</summary>
    public static (TransformerModel Model, ITokenizer Tokenizer) LoadModel(string modelPath, string tokenizerSpec)
    {
        if (!File.Exists(modelPath) && !Directory.Exists(modelPath)) throw new InvalidInputException($"{modelPath}: model not found (a Hugging Face folder or a llama2.c .bin)");
        var model = ModelFiles.Load($"model '{modelPath}'", () => ModelCheckpoint.Load(modelPath));
        return (model, LoadTokenizer(tokenizerSpec, model.Config.VocabSize));
    }

    /// <summary>Critique–revision over the prompts; writes revisions.jsonl and sft.jsonl into <paramref name="outDirectory"/>.</summary>
    public static List<RevisionTrace> Revise(string modelPath, string tokenizer, string promptsPath, int? limit, Constitution constitution, RevisionOptions options, int batchSize, string outDirectory, Action<string>? log = null)
    {
        var prompts = RedTeamPrompts.Load(promptsPath, limit);
        var (model, tok) = LoadModel(modelPath, tokenizer);
        CheckRoom(model, modelPath, options.EffectiveSampling.MaxNewTokens);
        var lm = new EngineLanguageModel(model, tok, batchSize);
        var traces = new CritiqueReviser(lm, constitution).Run(prompts, options, log);
        Directory.CreateDirectory(outDirectory);
        CritiqueReviser.WriteTraces(Path.Combine(outDirectory, RevisionsFile), traces);
        CritiqueReviser.WriteSft(Path.Combine(outDirectory, SftDataFile), traces);
        if (lm.TruncatedPrompts > 0) log?.Invoke($"note: {lm.TruncatedPrompts} prompt(s) were longer than the context and kept only their end");
        return traces;
    }

    /// <summary>Supervised fine-tuning into <paramref name="runDirectory"/> (config.json, metrics.jsonl, model/, adapter/ with LoRA).</summary>
    public static SftResult Sft(string modelPath, string tokenizer, string dataPath, ChatFormat chat, SftOptions options, string runDirectory, Action<string>? log = null, Action<SftStepMetrics>? onStep = null)
    {
        var examples = SftExamples.Load(dataPath);
        var (model, tok) = LoadModel(modelPath, tokenizer);
        // A missing GPU must fail before the run directory gets its first file.
        if (options.Device != "cpu")
        {
            using var probe = Rlhf.Compute.CausalLmBackends.OpenDevice(options.Device);
        }

        Directory.CreateDirectory(runDirectory);
        AtomicFile.WriteAllText(Path.Combine(runDirectory, "config.json"), Json(w =>
        {
            w.WriteString("model", Path.GetFullPath(modelPath));
            w.WriteString("tokenizer", tokenizer);
            w.WriteString("data", Path.GetFullPath(dataPath));
            w.WriteString("chat_format", chat.Name);
            w.WriteNumber("steps", options.Steps);
            w.WriteNumber("batch_size", options.BatchSize);
            w.WriteNumber("learning_rate", options.LearningRate);
            w.WriteNumber("warmup_steps", options.WarmupSteps);
            w.WriteString("decay", options.Decay.ToString().ToLowerInvariant());
            w.WriteNumber("max_grad_norm", options.MaxGradNorm);
            w.WriteNumber("weight_decay", options.WeightDecay);
            w.WriteNumber("held_out_fraction", options.HeldOutFraction);
            w.WriteNumber("eval_every", options.EvalEvery);
            w.WriteNumber("lora_rank", options.LoraRank);
            w.WriteNumber("lora_alpha", options.LoraAlpha);
            w.WriteNumber("max_seq", options.MaxSeq);
            w.WriteNumber("seed", options.Seed);
            w.WriteString("device", options.Device);
        }));
        return SftTrainer.Run(model, tok, chat, examples, options, runDirectory, log, onStep);
    }

    /// <summary>AI preference labels: replies from the policy model, judged by the feedback model; writes pairs JSONL.</summary>
    public static List<AiPreferencePair> Prefs(string policyPath, string? feedbackPath, string tokenizer, string promptsPath, int? limit, Constitution constitution, PreferenceOptions options, int batchSize, string outPath, Action<string>? log = null)
    {
        var prompts = RedTeamPrompts.Load(promptsPath, limit);
        var (policy, tok) = LoadModel(policyPath, tokenizer);
        CheckRoom(policy, policyPath, options.EffectiveSampling.MaxNewTokens);
        var policyLm = new EngineLanguageModel(policy, tok, batchSize);
        var feedbackLm = feedbackPath is null || Path.GetFullPath(feedbackPath) == Path.GetFullPath(policyPath)
            ? policyLm : new EngineLanguageModel(LoadModel(feedbackPath, tokenizer).Model, tok, batchSize);
        var pairs = AiPreferences.Label(prompts, policyLm, new PreferenceLabeler(feedbackLm, constitution), options, log);
        var dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (dir != null) Directory.CreateDirectory(dir);
        AiPreferences.Write(outPath, pairs);
        return pairs;
    }

    /// <summary>Replies of <paramref name="maxNewTokens"/> must leave room for the prompt in the model's context (checked before any sampling).</summary>
    private static void CheckRoom(TransformerModel model, string modelPath, int maxNewTokens)
    {
        int context = model.Config.ContextLength;
        if (maxNewTokens >= context)
            throw new InvalidInputException($"max new tokens (--max-new-tokens, max_new_tokens) is {maxNewTokens}: it must be below the context length {context} of model {modelPath}");
    }

    internal static string Json(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
