using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using Rlhf.Tokenizers;

namespace Rlhf.Onnx;

/// <summary>
/// Text -> ids for a sequence classifier, with the special tokens the model was trained with (e.g. [CLS] … [SEP]).
/// <see cref="Load"/> reads a Hugging Face folder: vocab.txt, or a WordPiece tokenizer.json, through
/// Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>; <see cref="FromTokenizer"/> wraps one of the engine's tokenizers.
/// </summary>
public sealed class ClassifierTokenizer
{
    private readonly Func<string, int, int[]> encode;

    private ClassifierTokenizer(Func<string, int, int[]> encode, int padId, string source)
    {
        this.encode = encode;
        PadId = padId;
        Source = source;
    }

    public int PadId { get; }

    public string Source { get; }

    public int[] Encode(string text) => Encode(text, int.MaxValue);

    /// <summary>
    /// At most <paramref name="maxLength"/> ids, cut as Hugging Face truncates: the text is cut, the special tokens
    /// stay ([CLS] first 510 WordPieces [SEP] for 512), so a long text still ends the way the model was trained on.
    /// </summary>
    public int[] Encode(string text, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        return encode(text ?? throw new ArgumentNullException(nameof(text)), maxLength);
    }

    /// <summary>An engine tokenizer (no special tokens added); <paramref name="padId"/> fills padded positions (they are masked).</summary>
    public static ClassifierTokenizer FromTokenizer(ITokenizer tokenizer, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new ClassifierTokenizer((text, max) => tokenizer.Encode(text) is var ids && ids.Length > max ? ids[..max] : ids, padId, tokenizer.GetType().Name);
    }

    /// <summary>WordPiece from vocab.txt or tokenizer.json in <paramref name="folder"/> (lower-casing per tokenizer_config.json's do_lower_case, default true).</summary>
    public static ClassifierTokenizer Load(string folder)
    {
        bool lower = true;
        string cfg = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(cfg) && JsonNode.Parse(File.ReadAllBytes(cfg)) is JsonObject c && c["do_lower_case"] is JsonValue v && v.TryGetValue(out bool b)) lower = b;
        var options = new BertOptions { LowerCaseBeforeTokenization = lower };
        string vocab = Path.Combine(folder, "vocab.txt");
        BertTokenizer bert;
        string source;
        if (File.Exists(vocab))
        {
            bert = BertTokenizer.Create(vocab, options);
            source = vocab;
        }
        else
        {
            string json = Path.Combine(folder, "tokenizer.json");
            if (!File.Exists(json)) throw new OnnxModelException(folder, "tokenizer", "has neither vocab.txt nor tokenizer.json; pass a tokenizer explicitly.");
            var model = (JsonNode.Parse(File.ReadAllBytes(json)) as JsonObject)?["model"] as JsonObject;
            if (model?["type"]?.GetValue<string>() != "WordPiece" || model["vocab"] is not JsonObject map)
                throw new OnnxModelException(json, "model.type", "only WordPiece tokenizer.json files are read; pass a tokenizer explicitly for other kinds.");
            var lines = new string[map.Count];
            foreach (var kv in map)
            {
                int id = kv.Value!.GetValue<int>();
                if ((uint)id >= (uint)lines.Length) throw new OnnxModelException(json, kv.Key, $"vocab id {id} of '{kv.Key}' is outside [0, {lines.Length}).");
                lines[id] = kv.Key;
            }

            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
            bert = BertTokenizer.Create(stream, options);
            source = json;
        }

        int pad = bert.PaddingTokenId;
        return new ClassifierTokenizer((text, max) =>
        {
            var body = bert.EncodeToIds(text, addSpecialTokens: false);
            int keep = Math.Min(body.Count, Math.Max(0, max - 2));
            return [bert.ClassificationTokenId, .. body.Take(keep), bert.SeparatorTokenId];
        }, pad, source);
    }
}
