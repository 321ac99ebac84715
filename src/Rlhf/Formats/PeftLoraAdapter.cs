using System.Text.Json;
using System.Text.Json.Nodes;

using Rlhf.IO;

namespace Rlhf.Formats;

/// <summary>The fields of a PEFT <c>adapter_config.json</c> for a LoRA adapter that this engine uses.</summary>
public sealed record LoraAdapterConfig(
    int R,
    float LoraAlpha,
    IReadOnlyList<string> TargetModules,
    string? BaseModelNameOrPath,
    string TaskType = "CAUSAL_LM",
    float LoraDropout = 0f,
    bool FanInFanOut = false,
    bool UseRslora = false,
    string Bias = "none")
{
    /// <summary>The factor PEFT applies to B·A: lora_alpha / r, or lora_alpha / √r with rsLoRA.</summary>
    public float Scaling => UseRslora ? LoraAlpha / MathF.Sqrt(R) : LoraAlpha / R;
}

/// <summary>A LoRA adapter as PEFT saves it: config plus tensors named
/// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> [r, in] and <c>.lora_B.weight</c> [out, r].</summary>
public sealed record LoraAdapterFiles(LoraAdapterConfig Config, NamedTensors Tensors)
{
    /// <summary>The module paths (e.g. <c>transformer.h.0.attn.c_attn</c>) that have an A/B pair, in tensor order.</summary>
    public IReadOnlyList<string> ModulePaths()
    {
        var paths = new List<string>();
        foreach (var name in Tensors.Names)
        {
            if (PeftLoraAdapter.TryParseName(name, out string module, out bool isA) && isA)
            {
                paths.Add(module);
            }
        }

        return paths;
    }
}

/// <summary>Reads and writes PEFT LoRA adapter folders (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>).</summary>
public static class PeftLoraAdapter
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";
    private const string Prefix = "base_model.model.";

    /// <summary>PEFT's name of the down projection A [r, in] of module <paramref name="modulePath"/>.</summary>
    public static string LoraAName(string modulePath) => $"{Prefix}{modulePath}.lora_A.weight";

    /// <summary>PEFT's name of the up projection B [out, r] of module <paramref name="modulePath"/>.</summary>
    public static string LoraBName(string modulePath) => $"{Prefix}{modulePath}.lora_B.weight";

    /// <summary>Splits a PEFT LoRA tensor name into module path and A/B; false for any other name.</summary>
    public static bool TryParseName(string name, out string modulePath, out bool isA)
    {
        modulePath = "";
        isA = false;
        if (!name.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var (suffix, a) in new[] { (".lora_A.weight", true), (".lora_B.weight", false) })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && name.Length > Prefix.Length + suffix.Length)
            {
                modulePath = name.Substring(Prefix.Length, name.Length - Prefix.Length - suffix.Length);
                isA = a;
                return true;
            }
        }

        return false;
    }

    /// <summary>Reads the adapter in <paramref name="directory"/> and checks every A/B pair against r.</summary>
    /// <exception cref="CheckpointFormatException">Bad config (peft_type not LORA, wrong field types), a tensor name
    /// that is not a LoRA A/B weight, an unpaired A or B, or shapes that disagree with r or each other.</exception>
    public static LoraAdapterFiles Read(string directory)
    {
        string configPath = Path.Combine(directory, ConfigFileName);
        var config = ParseConfig(File.ReadAllBytes(configPath), configPath);
        var tensors = Safetensors.Read(Path.Combine(directory, WeightsFileName));
        var adapter = new LoraAdapterFiles(config, tensors);
        Validate(adapter);
        return adapter;
    }

    /// <summary>Writes both files into <paramref name="directory"/> (created if needed), each atomically,
    /// the weights first so a config never points at missing weights. Tensors get metadata format=pt as PEFT writes.</summary>
    public static void Write(string directory, LoraAdapterFiles adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        Validate(adapter);
        Directory.CreateDirectory(directory);
        var tensors = adapter.Tensors;
        if (!tensors.Metadata.ContainsKey("format"))
        {
            tensors = new NamedTensors(tensors.Source);
            foreach (var (k, v) in adapter.Tensors.Metadata)
            {
                tensors.Metadata[k] = v;
            }

            tensors.Metadata["format"] = "pt";
            foreach (var t in adapter.Tensors)
            {
                tensors.Add(t.Name, t.Shape, t.Data);
            }
        }

        Safetensors.Write(Path.Combine(directory, WeightsFileName), tensors);
        AtomicFile.WriteAllBytes(Path.Combine(directory, ConfigFileName), ConfigToJson(adapter.Config));
    }

    /// <summary>Checks names, pairing and shapes ([r, in] and [out, r]) of the adapter's tensors.</summary>
    public static void Validate(LoraAdapterFiles adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        var t = adapter.Tensors;
        int r = adapter.Config.R;
        foreach (var tensor in t)
        {
            if (!TryParseName(tensor.Name, out string module, out bool isA))
            {
                throw new CheckpointFormatException(t.Source, tensor.Name,
                    $"tensor {tensor.Name} is not a PEFT LoRA weight (base_model.model.<module>.lora_A/lora_B.weight)");
            }

            string other = isA ? LoraBName(module) : LoraAName(module);
            if (!t.TryGet(other, out var pair))
            {
                throw new CheckpointFormatException(t.Source, other, $"tensor {other} not found (pair of {tensor.Name})");
            }

            var a = isA ? tensor : pair;
            var b = isA ? pair : tensor;
            if (a.Shape.Length != 2 || a.Shape[0] != r)
            {
                throw new CheckpointFormatException(t.Source, a.Name, $"tensor {a.Name} has shape {TensorShape.Format(a.Shape)}, expected [r={r}, in]");
            }

            if (b.Shape.Length != 2 || b.Shape[1] != r)
            {
                throw new CheckpointFormatException(t.Source, b.Name, $"tensor {b.Name} has shape {TensorShape.Format(b.Shape)}, expected [out, r={r}]");
            }
        }
    }

    /// <summary>Parses adapter_config.json content; <paramref name="source"/> names it in errors.</summary>
    public static LoraAdapterConfig ParseConfig(ReadOnlySpan<byte> json, string source)
    {
        JsonObject obj;
        try
        {
            obj = JsonNode.Parse(json.ToArray()) as JsonObject ?? throw new CheckpointFormatException(source, null, "expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(source, null, $"not valid JSON: {e.Message}", e);
        }

        CheckpointFormatException Bad(string key, string expected) =>
            new(source, key, $"field {key} is {(obj.TryGetPropertyValue(key, out var n) ? n?.ToJsonString() ?? "null" : "missing")}, expected {expected}");

        JsonElement? Get(string key) =>
            obj.TryGetPropertyValue(key, out var n) && n is JsonValue v && v.TryGetValue(out JsonElement e) ? e : null;

        string peftType = Get("peft_type") is { ValueKind: JsonValueKind.String } pt ? pt.GetString()! : throw Bad("peft_type", "\"LORA\"");
        if (peftType != "LORA")
        {
            throw new CheckpointFormatException(source, "peft_type", $"peft_type '{peftType}' is not supported (expected LORA)");
        }

        int r = Get("r") is { ValueKind: JsonValueKind.Number } re && re.TryGetInt32(out int ri) && ri > 0 ? ri : throw Bad("r", "a positive integer");
        float alpha = Get("lora_alpha") is { ValueKind: JsonValueKind.Number } ae ? (float)ae.GetDouble() : throw Bad("lora_alpha", "a number");

        var modules = new List<string>();
        if (obj.TryGetPropertyValue("target_modules", out var tm) && tm is JsonArray arr)
        {
            foreach (var m in arr)
            {
                modules.Add(m is JsonValue mv && mv.TryGetValue(out JsonElement me) && me.ValueKind == JsonValueKind.String
                    ? me.GetString()!
                    : throw Bad("target_modules", "a list of module names"));
            }
        }
        else
        {
            // A string here is a regex over module paths; the engine resolves adapters by the tensor names instead.
            throw Bad("target_modules", "a list of module names (a regex string is not supported)");
        }

        string? baseModel = Get("base_model_name_or_path") is { ValueKind: JsonValueKind.String } be ? be.GetString() : null;
        string taskType = Get("task_type") is { ValueKind: JsonValueKind.String } te ? te.GetString()! : "CAUSAL_LM";
        float dropout = Get("lora_dropout") is { ValueKind: JsonValueKind.Number } de ? (float)de.GetDouble() : 0f;
        bool fanInFanOut = Get("fan_in_fan_out") is { ValueKind: JsonValueKind.True };
        bool rslora = Get("use_rslora") is { ValueKind: JsonValueKind.True };
        string bias = Get("bias") is { ValueKind: JsonValueKind.String } bb ? bb.GetString()! : "none";
        return new LoraAdapterConfig(r, alpha, modules, baseModel, taskType, dropout, fanInFanOut, rslora, bias);
    }

    /// <summary>adapter_config.json bytes with the keys PEFT writes for a plain LoRA adapter.</summary>
    public static byte[] ConfigToJson(LoraAdapterConfig c)
    {
        var modules = new JsonArray();
        foreach (var m in c.TargetModules)
        {
            modules.Add(m);
        }

        var o = new JsonObject
        {
            ["base_model_name_or_path"] = c.BaseModelNameOrPath,
            ["bias"] = c.Bias,
            ["fan_in_fan_out"] = c.FanInFanOut,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["lora_alpha"] = c.LoraAlpha,
            ["lora_dropout"] = c.LoraDropout,
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = c.R,
            ["target_modules"] = modules,
            ["task_type"] = c.TaskType,
            ["use_rslora"] = c.UseRslora,
        };
        return JsonSerializer.SerializeToUtf8Bytes(o, new JsonSerializerOptions { WriteIndented = true });
    }
}
