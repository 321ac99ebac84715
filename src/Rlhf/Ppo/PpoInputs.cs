using Rlhf.Checkpoints;
using Rlhf.Demo;
using Rlhf.Formats;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Ppo;

/// <summary>
/// Resolves the command line's textual inputs into PPO objects. Reward and scorer specs: see <see cref="RewardSpecs"/>
/// (keyword:WORD, a reward-model folder, a classifier folder#CLASS, a model.onnx#CLASS).
/// </summary>
public static class PpoInputs
{
    public static IRewardFunction Reward(string? spec, ITokenizer tokenizer)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new InvalidInputException("no reward given: pass --reward keyword:WORD, a reward-model folder, CLASSIFIER_DIR#CLASS or MODEL.onnx#CLASS.");
        if (spec.StartsWith("keyword:", StringComparison.Ordinal) && spec.Length > 8) return new KeywordReward(spec[8..]);
        return RewardSpecs.TryReward(spec)
            ?? throw new InvalidInputException($"unknown reward '{spec}': expected keyword:WORD, a reward-model folder, CLASSIFIER_DIR#CLASS or MODEL.onnx#CLASS.");
    }

    public static IProbabilityScorer Scorer(string? spec, ITokenizer tokenizer)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new InvalidInputException("no toxicity scorer given: pass --scorer keyword:WORD, CLASSIFIER_DIR#UNWANTED_CLASS or MODEL.onnx#UNWANTED_CLASS.");
        if (spec.StartsWith("keyword:", StringComparison.Ordinal) && spec.Length > 8) return new KeywordScorer(spec[8..]);
        return RewardSpecs.TryScorer(spec)
            ?? throw new InvalidInputException($"unknown scorer '{spec}': expected keyword:WORD, CLASSIFIER_DIR#UNWANTED_CLASS or MODEL.onnx#UNWANTED_CLASS.");
    }

    /// <summary>"byte" → <see cref="ByteTokenizer"/>, "gpt2" → <see cref="Gpt2Tokenizer"/>, else a llama2.c tok*.bin file.</summary>
    public static ITokenizer Tokenizer(string spec)
    {
        try
        {
            return TokenizerLoader.Load(spec);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException(e.Message);
        }
    }

    public static TransformerModel Model(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new InvalidInputException($"model '{path}' does not exist.");
        return ModelFiles.Load($"model '{path}'", () => ModelCheckpoint.Load(path));
    }

    /// <summary>Prompts: "demo:customer" (the synthetic customer messages) or a JSONL file with a "prompt" string per line.</summary>
    public static List<string> Prompts(string spec)
    {
        var list = new List<string>();
        if (spec == "demo:customer")
        {
            foreach (var m in CustomerReplyCorpus.CustomerMessages) list.Add(CustomerReplyCorpus.PromptOf(m));
            return list;
        }

        if (!File.Exists(spec)) throw new InvalidInputException($"prompts file '{spec}' does not exist.");
        foreach (var line in JsonLines.Read(spec)) list.Add(line.RequireString("prompt"));
        if (list.Count == 0) throw new InvalidInputException($"{spec} has no prompts.");
        return list;
    }

    /// <summary>Attaches a PEFT adapter folder (as written by PPO's final/) to <paramref name="model"/>.</summary>
    public static void LoadAdapter(TransformerModel model, string directory)
    {
        var files = PeftLoraAdapter.Read(directory);
        var c = files.Config;
        var a = model.AttachAdapter(new LoraConfig(c.R, c.LoraAlpha, c.TargetModules), 0);
        foreach (var t in files.Tensors) a.LoadTensor(t.Name, t.Data);
    }

    /// <summary>A toy toxicity scorer: 1 when the text contains the keyword (case-insensitive), else 0.</summary>
    private sealed class KeywordScorer(string keyword) : IProbabilityScorer
    {
        public void Probabilities(IReadOnlyList<string> texts, Span<float> probabilities)
        {
            for (int i = 0; i < texts.Count; i++) probabilities[i] = texts[i].Contains(keyword, StringComparison.OrdinalIgnoreCase) ? 1f : 0f;
        }
    }
}
