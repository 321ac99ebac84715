using System.Globalization;
using Rlhf.Formats;

namespace Rlhf.Checkpoints;

/// <summary>
/// Checks a Hugging Face config.json against the tensors its folder actually holds before anything is sized by the
/// config: a layer count or width that the weights do not back (n_layer = 2147483647 next to a 2-layer file) would
/// otherwise allocate a layout, or a flat buffer, of that size before the first missing tensor is noticed.
/// Each mismatch names config.json, the field and the value, and what the weights file holds.
/// </summary>
public static class ConfigTensorCheck
{
    /// <exception cref="CheckpointFormatException">A config field disagrees with the tensors (file = config.json, item = field).</exception>
    public static void Check(HfModelConfig config, NamedTensors tensors, string configPath, string weightsPath)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        string weights = Path.GetFileName(weightsPath);
        bool gpt2 = config.ModelType == HfModelType.Gpt2;
        CheckLayerCount(config, tensors, configPath, weights, gpt2);

        var vocab = ("vocab_size", (long)config.VocabSize);
        if (gpt2)
        {
            var d = ("n_embd", (long)config.HiddenSize);
            Shape(tensors, configPath, weights, [vocab, d], "transformer.wte.weight", "wte.weight");
            Shape(tensors, configPath, weights, [("n_positions", config.MaxPositionEmbeddings), d], "transformer.wpe.weight", "wpe.weight");
            Shape(tensors, configPath, weights, [d, ("n_inner", config.IntermediateSize)], "transformer.h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.weight");
        }
        else
        {
            var d = ("hidden_size", (long)config.HiddenSize);
            Shape(tensors, configPath, weights, [vocab, d], "model.embed_tokens.weight");
            Shape(tensors, configPath, weights, [("intermediate_size", config.IntermediateSize), d], "model.layers.0.mlp.gate_proj.weight");
            Shape(tensors, configPath, weights, [("num_key_value_heads", (long)config.NumKvHeads * config.HeadDim), d], "model.layers.0.self_attn.k_proj.weight");
        }
    }

    /// <summary>The config may name fewer layers than the file holds (the rest go unused) but never more.</summary>
    private static void CheckLayerCount(HfModelConfig config, NamedTensors tensors, string configPath, string weights, bool gpt2)
    {
        string field = gpt2 ? "n_layer" : "num_hidden_layers";
        string[] prefixes = gpt2 ? ["transformer.h.", "h."] : ["model.layers."];
        var present = new HashSet<int>();
        foreach (string name in tensors.Names)
        {
            foreach (string prefix in prefixes)
            {
                if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                int dot = name.IndexOf('.', prefix.Length);
                if (dot > prefix.Length && int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int layer))
                    present.Add(layer);
            }
        }

        for (int i = 0; i < config.NumLayers; i++)
        {
            // present.Count bounds the loop: a config asking for more layers than the file has fails at the first gap.
            if (!present.Contains(i))
            {
                throw new CheckpointFormatException(configPath, field,
                    $"{field} = {config.NumLayers}, but {weights} holds tensors for {present.Count} layer{(present.Count == 1 ? "" : "s")} (layer {i} is missing)");
            }
        }
    }

    /// <summary>The first of <paramref name="names"/> present must have the shape the config gives it; the item is the first field that disagrees.</summary>
    private static void Shape(NamedTensors tensors, string configPath, string weights, (string Field, long Size)[] dims, params string[] names)
    {
        foreach (string name in names)
        {
            if (!tensors.TryGet(name, out var t)) continue;
            string? field = t.Shape.Length == dims.Length ? null : dims[0].Field;
            for (int i = 0; field is null && i < dims.Length; i++)
            {
                if (t.Shape[i] != dims[i].Size) field = dims[i].Field;
            }

            if (field is null) return;
            string given = string.Join(", ", dims.Select(x => x.Field).Distinct());
            throw new CheckpointFormatException(configPath, field,
                $"{field} disagrees with the weights: {given} give {name} the shape [{string.Join(", ", dims.Select(x => x.Size))}], but {weights} holds [{string.Join(", ", t.Shape)}]");
        }

        // A missing tensor is reported by the loader, naming the weights file.
    }
}
