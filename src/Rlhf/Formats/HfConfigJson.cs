using System.Text.Json;
using System.Text.Json.Nodes;

using Rlhf.IO;
using Rlhf.Model;

namespace Rlhf.Formats;

/// <summary>Reads and writes Hugging Face <c>config.json</c> for GPT-2 and Llama models.</summary>
public static class HfConfigJson
{
    /// <summary>The longest context accepted (2^20; Llama 3.1 uses 131072): larger values are a damaged config, not a model.</summary>
    public const int MaxPositions = 1 << 20;

    /// <summary>Parses <paramref name="path"/>; missing optional fields take Hugging Face's class defaults.</summary>
    /// <exception cref="CheckpointFormatException">Bad JSON, unknown model_type, a field of the wrong type or an
    /// inconsistent architecture (the message names the file and the field and value).</exception>
    public static HfModelConfig Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    /// <summary>Parses config.json content; <paramref name="source"/> names it in error messages.</summary>
    public static HfModelConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(source, null, $"not valid JSON: {e.Message}", e);
        }

        if (root is not JsonObject obj)
        {
            throw new CheckpointFormatException(source, null, "expected a JSON object");
        }

        var r = new FieldReader(source, obj);
        string? modelType = r.String("model_type");
        HfModelConfig config = modelType switch
        {
            "gpt2" => ReadGpt2(r),
            "llama" => ReadLlama(r),
            null => throw new CheckpointFormatException(source, "model_type", "missing field model_type (supported: gpt2, llama)"),
            _ => throw new CheckpointFormatException(source, "model_type", $"model_type '{modelType}' is not supported (supported: gpt2, llama)"),
        };
        Validate(source, config);
        SpecialId(r, "pad_token_id", config.VocabSize); // not kept, but a bad one is a damaged config
        return config;
    }

    private static HfModelConfig ReadGpt2(FieldReader r)
    {
        // The engine's GPT-2 MLP is GELU with the tanh approximation, which is what these two names mean in transformers.
        string act = r.String("activation_function") ?? "gelu_new";
        if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
        {
            throw new CheckpointFormatException(r.Source, "activation_function",
                $"activation_function '{act}' is not supported (supported: gelu_new, gelu_pytorch_tanh)");
        }

        RejectTrue(r, "scale_attn_by_inverse_layer_idx");
        RejectTrue(r, "reorder_and_upcast_attn");
        RejectTrue(r, "add_cross_attention");
        int embd = r.Int("n_embd") ?? 768;
        int vocab = r.Int("vocab_size") ?? 50257;
        return new HfModelConfig(
            HfModelType.Gpt2,
            HiddenSize: embd,
            IntermediateSize: r.Int("n_inner") ?? 4 * embd,
            NumLayers: r.Int("n_layer") ?? 12,
            NumHeads: r.Int("n_head") ?? 12,
            NumKvHeads: r.Int("n_head") ?? 12,
            MaxPositionEmbeddings: r.Int("n_positions") ?? 1024,
            VocabSize: vocab,
            NormEps: r.Float("layer_norm_epsilon") ?? 1e-5f,
            RopeTheta: 0f,
            TieWordEmbeddings: r.Bool("tie_word_embeddings") ?? true,
            BosTokenId: SpecialId(r, "bos_token_id", vocab, DefaultIfInVocabulary(50256, vocab)),
            EosTokenId: EosIds(r, vocab, DefaultIfInVocabulary(50256, vocab)));
    }

    private static HfModelConfig ReadLlama(FieldReader r)
    {
        int heads = r.Int("num_attention_heads") ?? 32;
        string act = r.String("hidden_act") ?? "silu";
        if (act != "silu")
        {
            throw new CheckpointFormatException(r.Source, "hidden_act", $"hidden_act '{act}' is not supported (supported: silu)");
        }

        // Biases would add tensors the engine's Llama does not have.
        RejectTrue(r, "attention_bias");
        RejectTrue(r, "mlp_bias");
        int hidden = r.Int("hidden_size") ?? 4096;
        int vocab = r.Int("vocab_size") ?? 32000;
        if (r.Int("head_dim") is int headDim && headDim * heads != hidden)
        {
            throw new CheckpointFormatException(r.Source, "head_dim",
                $"head_dim = {headDim} differs from hidden_size / num_attention_heads = {hidden} / {heads}; not supported");
        }

        if (r.Has("rope_scaling"))
        {
            throw new CheckpointFormatException(r.Source, "rope_scaling", $"rope_scaling {r.Raw("rope_scaling")} is not supported");
        }

        return new HfModelConfig(
            HfModelType.Llama,
            HiddenSize: hidden,
            IntermediateSize: r.Int("intermediate_size") ?? 11008,
            NumLayers: r.Int("num_hidden_layers") ?? 32,
            NumHeads: heads,
            NumKvHeads: r.Int("num_key_value_heads") ?? heads,
            MaxPositionEmbeddings: r.Int("max_position_embeddings") ?? 2048,
            VocabSize: vocab,
            NormEps: r.Float("rms_norm_eps") ?? 1e-6f,
            RopeTheta: r.Float("rope_theta") ?? 10000f,
            TieWordEmbeddings: r.Bool("tie_word_embeddings") ?? false,
            BosTokenId: SpecialId(r, "bos_token_id", vocab, DefaultIfInVocabulary(1, vocab)),
            EosTokenId: EosIds(r, vocab, DefaultIfInVocabulary(2, vocab)));
    }

    // transformers' class defaults (GPT-2's 50256, Llama's 1 and 2) name tokens a small vocabulary does not have: absent then.
    private static int? DefaultIfInVocabulary(int id, int vocabSize) => id < vocabSize ? id : null;

    /// <summary>
    /// A special token id as read: absent gives <paramref name="fallback"/>; −1 (older configs' "none") and an id at or
    /// past the vocabulary's end are absent too: such an id names no token, so nothing can be generated or prompted
    /// with it, and configs written by earlier versions of this engine carry GPT-2's 50256 for a 259-token vocabulary.
    /// Other negative ids are a damaged config.
    /// </summary>
    private static int? SpecialId(FieldReader r, string field, int vocabSize, int? fallback = null, string expected = "an integer")
    {
        if (r.Int(field, expected) is not int id) return fallback;
        if (id == -1 || id >= vocabSize) return null;
        if (id < 0) throw new CheckpointFormatException(r.Source, field, $"{field} = {id} is outside the vocabulary [0, {vocabSize})");
        return id;
    }

    /// <summary>
    /// eos_token_id as read: one id as <see cref="SpecialId"/> reads it, or a list (transformers stops generation on any
    /// of its ids) whose elements follow the same rules one by one: −1 and ids at or past the vocabulary's end are left
    /// out, and a list left with none is absent. An empty list, an element that is not an integer and any other negative
    /// id are a damaged config.
    /// </summary>
    private static TokenIdList? EosIds(FieldReader r, int vocabSize, int? fallback)
    {
        const string field = "eos_token_id", expected = "an integer or a non-empty list of integers";
        if (r.IntList(field, expected) is not int[] list)
        {
            return SpecialId(r, field, vocabSize, fallback, expected) is int id ? TokenIdList.Single(id) : null;
        }

        var kept = new List<int>(list.Length);
        for (int i = 0; i < list.Length; i++)
        {
            int id = list[i];
            if (id == -1 || id >= vocabSize) continue;
            if (id < 0) throw new CheckpointFormatException(r.Source, field, $"{field}[{i}] = {id} is outside the vocabulary [0, {vocabSize})");
            kept.Add(id);
        }

        return kept.Count == 0 ? null : TokenIdList.List(kept);
    }

    private static void CheckSpecialId(string source, string field, TokenIdList? ids, int vocabSize)
    {
        if (ids is null) return;
        for (int i = 0; i < ids.Count; i++)
        {
            int v = ids[i];
            if (v < 0 || v >= vocabSize)
            {
                string name = ids.IsList ? $"{field}[{i}]" : field;
                throw new CheckpointFormatException(source, field, $"{name} = {v} is outside the vocabulary [0, {vocabSize})");
            }
        }
    }

    private static void CheckSpecialId(string source, string field, int? id, int vocabSize)
    {
        if (id is int v && (v < 0 || v >= vocabSize))
        {
            throw new CheckpointFormatException(source, field, $"{field} = {v} is outside the vocabulary [0, {vocabSize})");
        }
    }

    private static void RejectTrue(FieldReader r, string key)
    {
        if (r.Bool(key) == true)
        {
            throw new CheckpointFormatException(r.Source, key, $"{key} = true is not supported");
        }
    }

    /// <summary>Checks the architecture is self-consistent; used by the reader and the writer.</summary>
    /// <exception cref="CheckpointFormatException">A non-positive size, heads that do not divide evenly or a special token id outside the vocabulary.</exception>
    public static void Validate(string source, HfModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        void Positive(string field, int v)
        {
            if (v <= 0)
            {
                throw new CheckpointFormatException(source, field, $"{field} = {v}, expected > 0");
            }
        }

        bool gpt2 = c.ModelType == HfModelType.Gpt2;
        Positive(gpt2 ? "n_embd" : "hidden_size", c.HiddenSize);
        Positive(gpt2 ? "n_inner" : "intermediate_size", c.IntermediateSize);
        Positive(gpt2 ? "n_layer" : "num_hidden_layers", c.NumLayers);
        Positive(gpt2 ? "n_head" : "num_attention_heads", c.NumHeads);
        Positive(gpt2 ? "n_head" : "num_key_value_heads", c.NumKvHeads);
        Positive(gpt2 ? "n_positions" : "max_position_embeddings", c.MaxPositionEmbeddings);
        Positive("vocab_size", c.VocabSize);
        if (c.MaxPositionEmbeddings > MaxPositions)
        {
            // Position tables (GPT-2's wpe, Llama's RoPE cos/sin) are sized by this field before any text is seen.
            string field = gpt2 ? "n_positions" : "max_position_embeddings";
            throw new CheckpointFormatException(source, field, $"{field} = {c.MaxPositionEmbeddings} exceeds the engine's limit of {MaxPositions} positions");
        }

        if (c.HiddenSize % c.NumHeads != 0)
        {
            throw new CheckpointFormatException(source, gpt2 ? "n_head" : "num_attention_heads",
                $"hidden size {c.HiddenSize} is not divisible by {c.NumHeads} heads");
        }

        if (c.NumHeads % c.NumKvHeads != 0)
        {
            throw new CheckpointFormatException(source, "num_key_value_heads",
                $"num_key_value_heads = {c.NumKvHeads} does not divide num_attention_heads = {c.NumHeads}");
        }

        if (gpt2 && c.NumKvHeads != c.NumHeads)
        {
            throw new CheckpointFormatException(source, "n_head", $"GPT-2 has no grouped-query attention: NumKvHeads {c.NumKvHeads} != NumHeads {c.NumHeads}");
        }

        if (!gpt2 && c.HeadDim % 2 != 0)
        {
            throw new CheckpointFormatException(source, "num_attention_heads", $"head size {c.HeadDim} is odd; RoPE needs pairs");
        }

        if (!(c.NormEps > 0) || !float.IsFinite(c.NormEps))
        {
            throw new CheckpointFormatException(source, gpt2 ? "layer_norm_epsilon" : "rms_norm_eps", $"norm epsilon {c.NormEps}, expected a finite value > 0");
        }

        // Generation stops on eos_token_id and prompts start with bos_token_id: an id the embedding lacks is a damaged config.
        CheckSpecialId(source, "bos_token_id", c.BosTokenId, c.VocabSize);
        CheckSpecialId(source, "eos_token_id", c.EosTokenId, c.VocabSize);
    }

    /// <summary>Writes <paramref name="config"/> as a Hugging Face config.json (upstream key names), atomically.</summary>
    public static void Write(string path, HfModelConfig config)
    {
        Validate(path, config);
        AtomicFile.WriteAllBytes(path, ToJson(config));
    }

    /// <summary>The config.json bytes (indented, UTF-8) for <paramref name="c"/>.</summary>
    public static byte[] ToJson(HfModelConfig c)
    {
        var o = new JsonObject();
        if (c.ModelType == HfModelType.Gpt2)
        {
            o["architectures"] = new JsonArray("GPT2LMHeadModel");
            o["model_type"] = "gpt2";
            o["activation_function"] = "gelu_new";
            o["n_embd"] = c.HiddenSize;
            o["n_layer"] = c.NumLayers;
            o["n_head"] = c.NumHeads;
            o["n_inner"] = c.IntermediateSize;
            o["n_positions"] = c.MaxPositionEmbeddings;
            o["n_ctx"] = c.MaxPositionEmbeddings;
            o["vocab_size"] = c.VocabSize;
            o["layer_norm_epsilon"] = c.NormEps;
        }
        else
        {
            o["architectures"] = new JsonArray("LlamaForCausalLM");
            o["model_type"] = "llama";
            o["hidden_act"] = "silu";
            o["hidden_size"] = c.HiddenSize;
            o["intermediate_size"] = c.IntermediateSize;
            o["num_hidden_layers"] = c.NumLayers;
            o["num_attention_heads"] = c.NumHeads;
            o["num_key_value_heads"] = c.NumKvHeads;
            o["max_position_embeddings"] = c.MaxPositionEmbeddings;
            o["rms_norm_eps"] = c.NormEps;
            o["rope_theta"] = c.RopeTheta;
            o["vocab_size"] = c.VocabSize;
        }

        o["tie_word_embeddings"] = c.TieWordEmbeddings;
        if (c.BosTokenId is int bos)
        {
            o["bos_token_id"] = bos;
        }

        if (c.EosTokenId is { } eos)
        {
            // As it was read: a list stays a list.
            o["eos_token_id"] = eos.IsList ? new JsonArray([.. eos.Select(id => (JsonNode)id)]) : eos[0];
        }

        o["torch_dtype"] = "float32";
        return JsonSerializer.SerializeToUtf8Bytes(o, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Typed access to optional top-level fields; a wrong type is an error naming the field and value.</summary>
    private readonly struct FieldReader(string source, JsonObject obj)
    {
        public string Source => source;

        public bool Has(string key) => obj.TryGetPropertyValue(key, out var v) && v is not null;

        public string Raw(string key) => obj[key]?.ToJsonString() ?? "null";

        private JsonValue? Value(string key, string expected)
        {
            if (!obj.TryGetPropertyValue(key, out var node) || node is null)
            {
                return null;
            }

            return node as JsonValue ?? throw Bad(key, node, expected);
        }

        /// <summary>
        /// The integers of <paramref name="key"/> when it holds a JSON array, else null (absent or not an array: read it
        /// as a single value). An empty array or an element that is not an integer names the key, the array and the element.
        /// </summary>
        public int[]? IntList(string key, string expected)
        {
            if (!obj.TryGetPropertyValue(key, out var node) || node is not JsonArray array)
            {
                return null;
            }

            if (array.Count == 0)
            {
                throw Bad(key, array, expected);
            }

            var result = new int[array.Count];
            for (int i = 0; i < array.Count; i++)
            {
                if (array[i] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out JsonElement e) && e.TryGetInt32(out int id))
                {
                    result[i] = id;
                    continue;
                }

                throw new CheckpointFormatException(source, key,
                    $"field {key} is {array.ToJsonString()}: element {i} is {array[i]?.ToJsonString() ?? "null"}, expected an integer");
            }

            return result;
        }

        public string? String(string key)
        {
            var v = Value(key, "a string");
            return v is null ? null : v.TryGetValue(out string? s) ? s : throw Bad(key, v, "a string");
        }

        public int? Int(string key, string expected = "an integer")
        {
            var v = Value(key, expected);
            if (v is null)
            {
                return null;
            }

            if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out JsonElement e) && e.TryGetInt32(out int i))
            {
                return i;
            }

            throw Bad(key, v, expected);
        }

        public float? Float(string key)
        {
            var v = Value(key, "a number");
            if (v is null)
            {
                return null;
            }

            if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out JsonElement e))
            {
                return (float)e.GetDouble();
            }

            throw Bad(key, v, "a number");
        }

        public bool? Bool(string key)
        {
            var v = Value(key, "true or false");
            if (v is null)
            {
                return null;
            }

            var kind = v.GetValueKind();
            return kind is JsonValueKind.True or JsonValueKind.False ? kind == JsonValueKind.True : throw Bad(key, v, "true or false");
        }

        private CheckpointFormatException Bad(string key, JsonNode node, string expected) =>
            new(source, key, $"field {key} is {node.ToJsonString()}, expected {expected}");
    }
}
