using System.Text.Json;

namespace Rlhf.Formats;

/// <summary>A Hugging Face model folder: <c>config.json</c> plus <c>model.safetensors</c>
/// (or shards listed in <c>model.safetensors.index.json</c>). Tensor names are left as upstream writes them.</summary>
public sealed record HfCheckpoint(HfModelConfig Config, NamedTensors Tensors)
{
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Reads config.json and all tensors of <paramref name="directory"/> (single file or shards) as fp32.</summary>
    /// <exception cref="FileNotFoundException">Neither model.safetensors nor model.safetensors.index.json exists.</exception>
    /// <exception cref="CheckpointFormatException">A malformed file, or an index whose weight_map disagrees with the shards.</exception>
    public static HfCheckpoint Read(string directory)
    {
        var config = HfConfigJson.Read(Path.Combine(directory, ConfigFileName));
        return new HfCheckpoint(config, ReadTensors(directory));
    }

    /// <summary>The tensors of <paramref name="directory"/>: model.safetensors, or every shard named by the index.</summary>
    public static NamedTensors ReadTensors(string directory)
    {
        string single = Path.Combine(directory, WeightsFileName);
        if (File.Exists(single))
        {
            return Safetensors.Read(single);
        }

        string index = Path.Combine(directory, IndexFileName);
        if (!File.Exists(index))
        {
            throw new FileNotFoundException($"folder {directory} has neither {WeightsFileName} nor {IndexFileName}", single);
        }

        var weightMap = ReadWeightMap(index);
        var result = new NamedTensors(index);
        var shards = new SortedSet<string>(weightMap.Values, StringComparer.Ordinal);
        foreach (string shard in shards)
        {
            string shardPath = Path.Combine(directory, shard);
            using var file = SafetensorsFile.Open(shardPath);
            foreach (var info in file.Tensors)
            {
                if (!weightMap.TryGetValue(info.Name, out string? listed) || listed != shard)
                {
                    throw new CheckpointFormatException(shardPath, info.Name,
                        $"tensor {info.Name} is in shard {shard} but the index lists it under {(listed is null ? "no shard" : listed)}");
                }

                result.Add(info.Name, info.Shape, file.ReadFloats(info.Name));
            }
        }

        foreach (var (name, shard) in weightMap)
        {
            if (!result.Contains(name))
            {
                throw new CheckpointFormatException(index, name, $"tensor {name} is listed under {shard} but that shard does not hold it");
            }
        }

        return result;
    }

    /// <summary>Writes config.json and model.safetensors (F32, metadata format=pt) into <paramref name="directory"/>, each atomically.</summary>
    public static void Write(string directory, HfCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Directory.CreateDirectory(directory);
        var views = new List<TensorView>(checkpoint.Tensors.Count);
        foreach (var t in checkpoint.Tensors)
        {
            views.Add(new TensorView(t.Name, t.Shape, t.Data));
        }

        var metadata = new Dictionary<string, string>(checkpoint.Tensors.Metadata, StringComparer.Ordinal);
        metadata.TryAdd("format", "pt");
        Safetensors.Write(Path.Combine(directory, WeightsFileName), views, metadata);
        HfConfigJson.Write(Path.Combine(directory, ConfigFileName), checkpoint.Config);
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(index));
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(index, null, $"not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(index, "weight_map", "missing object field weight_map");
            }

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                string? shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
                // Shards must be plain file names in the same folder.
                if (string.IsNullOrEmpty(shard) || shard != Path.GetFileName(shard))
                {
                    throw new CheckpointFormatException(index, entry.Name, $"weight_map entry {entry.Name} is {entry.Value}, expected a file name in the same folder");
                }

                result[entry.Name] = shard;
            }

            return result;
        }
    }
}
