using System.Text.Json;
using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Reward;

/// <summary>
/// On-disk layout of a reward model or classifier, a folder: the trunk as a Hugging Face checkpoint
/// (config.json + model.safetensors, a LoRA adapter merged in), head.safetensors ("score.weight" [C, d],
/// "score.bias" [C]), and head_config.json: {"kind", "tokenizer", "max_length", "padding", plus the kind's fields}.
/// A llama2.c tokenizer file is copied into the folder so the model is self-contained.
/// </summary>
public static class ScoredModelFiles
{
    public const string HeadFileName = "head.safetensors";
    public const string ConfigFileName = "head_config.json";
    public const string TokenizerFileName = "tokenizer.bin";

    public static void Save(string directory, TransformerModel model, ScoreHead head, string tokenizer, TokenRows rows, string kind, JsonObject extra)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(head);
        Directory.CreateDirectory(directory);
        ModelCheckpoint.SaveHf(model, directory);
        var tensors = new NamedTensors(directory);
        foreach (var t in head.Tensors) tensors.Add(t.Name, t.Shape, head.Parameters.AsSpan(t.Offset, t.Length).ToArray());
        Safetensors.Write(Path.Combine(directory, HeadFileName), tensors);
        string tokName = tokenizer;
        if (tokenizer != "byte" && tokenizer != "gpt2")
        {
            string target = Path.Combine(directory, TokenizerFileName);
            if (Path.GetFullPath(tokenizer) != Path.GetFullPath(target)) AtomicFile.WriteAllBytes(target, File.ReadAllBytes(tokenizer));
            tokName = TokenizerFileName;
        }

        var json = new JsonObject
        {
            ["kind"] = kind,
            ["tokenizer"] = tokName,
            ["max_length"] = rows.MaxLength,
            ["padding"] = rows.Padding == PaddingSide.Left ? "left" : "right",
            ["outputs"] = head.Outputs,
        };
        foreach (var (k, v) in extra) json[k] = v?.DeepClone();
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Loads the trunk, head, tokenizer and head_config.json; <paramref name="kind"/> must match the saved kind.</summary>
    public static (SequenceScorer Scorer, ITokenizer Tokenizer, JsonObject Config) Load(string directory, string kind)
    {
        string configPath = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(configPath)) throw new InvalidInputException($"{directory}: not a saved {kind} model (no {ConfigFileName})");
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new InvalidInputException($"{configPath}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{configPath}: not valid JSON ({e.Message})");
        }

        var fields = new HeadConfigFields(configPath, config);
        string savedKind = fields.String("kind")!;
        if (savedKind != kind) throw new InvalidInputException($"{configPath}: holds a '{savedKind}' model, expected '{kind}'");
        string tokName = fields.String("tokenizer")!;
        int maxLength = fields.Int("max_length", 1, HfConfigJson.MaxPositions);
        var padding = fields.OneOf("padding", "right", "left") == "left" ? PaddingSide.Left : PaddingSide.Right;
        // An absurd outputs would size the head before head.safetensors is read; its shape is checked below.
        int outputs = fields.Int("outputs", 1, 1 << 20);
        var tokenizer = TokenizerLoader.Load(tokName == "byte" || tokName == "gpt2" ? tokName : Path.Combine(directory, tokName));
        var model = ModelCheckpoint.LoadHf(directory);
        if (maxLength > model.Config.ContextLength)
            throw fields.Error("max_length", $"max_length = {maxLength} exceeds the model's context of {model.Config.ContextLength} tokens");
        var rows = new TokenRows(tokenizer, maxLength, padding);
        foreach (var t in model.Layout.Tensors) RequireFinite(Path.Combine(directory, HfCheckpoint.WeightsFileName), t.Name, model.Tensor(t.Name));
        string headPath = Path.Combine(directory, HeadFileName);
        var tensors = Safetensors.Read(headPath);
        var head = ScoreHead.Classification(model.Config.ModelDim, outputs);
        foreach (var t in head.Tensors)
        {
            var data = tensors.Get(t.Name, t.Shape);
            RequireFinite(headPath, t.Name, data);
            head.LoadTensor(t.Name, data);
        }

        return (new SequenceScorer(model, head, rows), tokenizer, config);
    }

    // A NaN or infinite weight (a diverged or damaged save) makes every score NaN; name the tensor rather than fail
    // later on writing a non-finite score.
    private static void RequireFinite(string file, string tensor, ReadOnlySpan<float> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            if (!float.IsFinite(data[i])) throw new CheckpointFormatException(file, tensor, $"tensor {tensor} holds {data[i]} at index {i}; weights must be finite");
        }
    }
}
