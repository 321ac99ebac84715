using Rlhf.Formats;
using Rlhf.Model;

namespace Rlhf.Checkpoints;

/// <summary>
/// Loads and saves <see cref="TransformerModel"/>s in the formats users already have: a Hugging Face folder
/// (config.json + model.safetensors, upstream tensor names) or a llama2.c .bin checkpoint.
/// </summary>
public static class ModelCheckpoint
{
    /// <summary>A folder is read as a Hugging Face checkpoint, a file as a llama2.c .bin checkpoint.</summary>
    public static TransformerModel Load(string path)
    {
        if (Directory.Exists(path)) return LoadHf(path);
        if (File.Exists(path)) return LoadLlama2c(path);
        throw new FileNotFoundException($"model {path}: no such folder (Hugging Face checkpoint) or file (llama2.c .bin)", path);
    }

    public static TransformerModel LoadHf(string directory)
    {
        var checkpoint = HfCheckpoint.Read(directory);
        ConfigTensorCheck.Check(checkpoint.Config, checkpoint.Tensors, Path.Combine(directory, HfCheckpoint.ConfigFileName),
            Path.Combine(directory, HfCheckpoint.WeightsFileName));
        return FromTensors(ToTransformerConfig(checkpoint.Config), checkpoint.Tensors, Path.Combine(directory, HfCheckpoint.WeightsFileName));
    }

    public static TransformerModel LoadLlama2c(string path)
    {
        var model = Llama2cCheckpoint.Read(path);
        return FromTensors(ToTransformerConfig(model.Config), model.Tensors, path);
    }

    /// <summary>
    /// A model with every tensor of its layout copied from <paramref name="tensors"/>. GPT-2 checkpoints from the
    /// hub omit the "transformer." prefix; both spellings are accepted. Tensors the layout does not use (attention
    /// bias buffers, a tied lm_head copy) are ignored; a missing tensor or a shape mismatch names file and tensor.
    /// </summary>
    public static TransformerModel FromTensors(TransformerConfig config, NamedTensors tensors, string source)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        // The layout and flat buffer are sized by the config; never let them outgrow the values the file actually holds
        // (a layer count or width the file does not back would otherwise allocate gigabytes before the first missing
        // tensor). Within that bound the loop below names the exact missing or misshapen tensor.
        double needed = ParameterLayout.CountParameters(config), held = tensors.Sum(t => (double)t.ElementCount);
        if (needed > 2 * held + (1 << 20))
        {
            throw new CheckpointFormatException(source, null,
                $"the model config needs {needed:0} parameters but the file holds only {held:0} values; the config does not match these weights");
        }

        var model = new TransformerModel(config);
        foreach (var t in model.Layout.Tensors)
        {
            string name = t.Name;
            if (!tensors.Contains(name) && name.StartsWith("transformer.", StringComparison.Ordinal) && tensors.Contains(name["transformer.".Length..]))
            {
                name = name["transformer.".Length..];
            }

            if (!tensors.Contains(name))
            {
                throw new CheckpointFormatException(source, t.Name, $"tensor {t.Name} is missing");
            }

            model.LoadTensor(t.Name, tensors.Get(name, t.Shape));
        }

        return model;
    }

    /// <summary>Writes config.json and model.safetensors (F32, upstream names), each atomically.</summary>
    public static void SaveHf(TransformerModel model, string directory)
    {
        var tensors = new NamedTensors(directory);
        foreach (var t in model.Layout.Tensors)
        {
            tensors.Add(t.Name, t.Shape, model.Tensor(t.Name).ToArray());
        }

        HfCheckpoint.Write(directory, new HfCheckpoint(ToHfConfig(model.Config), tensors));
    }

    /// <summary>
    /// The model's shape from its config; an eos_token_id list (not a single id) comes along as
    /// <see cref="TransformerConfig.EosTokenIds"/>, the further ids generation stops on.
    /// </summary>
    public static TransformerConfig ToTransformerConfig(HfModelConfig hf) => (hf.ModelType switch
    {
        HfModelType.Gpt2 => TransformerConfig.Gpt2(hf.VocabSize, hf.MaxPositionEmbeddings, hf.HiddenSize, hf.NumLayers, hf.NumHeads, hf.NormEps)
            with { HiddenDim = hf.IntermediateSize },
        HfModelType.Llama => TransformerConfig.Llama(hf.VocabSize, hf.MaxPositionEmbeddings, hf.HiddenSize, hf.NumLayers, hf.NumHeads,
            hf.NumKvHeads, hf.IntermediateSize, hf.NormEps, hf.RopeTheta, hf.TieWordEmbeddings),
        _ => throw new NotSupportedException($"model type {hf.ModelType}"),
    }) with { EosTokenIds = hf.EosTokenId is { IsList: true } list ? list : null };

    /// <summary>The config.json to save <paramref name="c"/> with; an eos_token_id list it was loaded with is written back.</summary>
    public static HfModelConfig ToHfConfig(TransformerConfig c)
    {
        var hf = c.Family switch
        {
            ModelFamily.Gpt2 => HfModelConfig.Gpt2(c.ModelDim, c.LayerCount, c.HeadCount, c.ContextLength, c.VocabSize, c.HiddenDim) with { NormEps = c.NormEps },
            _ => new HfModelConfig(HfModelType.Llama, c.ModelDim, c.HiddenDim, c.LayerCount, c.HeadCount, c.KvHeadCount, c.ContextLength,
                c.VocabSize, c.NormEps, c.RopeTheta, c.TiedEmbeddings),
        };
        return c.EosTokenIds is { } eos ? hf with { EosTokenId = eos } : hf;
    }
}
