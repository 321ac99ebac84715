using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Model;

namespace Rlhf.Tests.Checkpoints;

/// <summary>A config.json whose sizes the weights do not back fails naming config.json and the field, before anything is sized by it.</summary>
public class ConfigTensorCheckTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder() => dir = Directory.CreateTempSubdirectory("ckpt-config-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private static readonly TransformerConfig Gpt2 = TransformerConfig.Gpt2(vocabSize: 37, contextLength: 16, modelDim: 8, layerCount: 2, headCount: 2);
    private static readonly TransformerConfig Llama = TransformerConfig.Llama(vocabSize: 41, contextLength: 16, modelDim: 8, layerCount: 2, headCount: 4, kvHeadCount: 2, hiddenDim: 12);

    /// <summary>Saves a tiny random model, then sets config.json's <paramref name="field"/> to <paramref name="value"/>.</summary>
    private string SaveWithField(TransformerConfig config, string field, long value)
    {
        var model = new TransformerModel(config);
        model.InitializeRandom(seed: 1);
        ModelCheckpoint.SaveHf(model, dir);
        string path = Path.Combine(dir, HfCheckpoint.ConfigFileName);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json[field] = value;
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    private CheckpointFormatException LoadFails(string configPath, string field)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir))!;
        Assert.That(e.FilePath, Is.EqualTo(configPath), e.Message);
        Assert.That(e.Item, Is.EqualTo(field), e.Message);
        Assert.That(e.Message, Does.Contain(HfCheckpoint.ConfigFileName).And.Contain(field));
        return e;
    }

    [TestCase("n_layer", int.MaxValue)]
    [TestCase("n_layer", 600_000)]
    [TestCase("n_layer", 3)]
    public void Gpt2_LayerCountBeyondTheWeights_NamesConfigAndField(string field, int value)
    {
        var e = LoadFails(SaveWithField(Gpt2, field, value), field);
        Assert.That(e.Message, Does.Contain(value.ToString(System.Globalization.CultureInfo.InvariantCulture)).And.Contain("2 layers"));
    }

    [TestCase("num_hidden_layers", int.MaxValue)]
    [TestCase("num_hidden_layers", 1_000_000)]
    public void Llama_LayerCountBeyondTheWeights_NamesConfigAndField(string field, int value) =>
        LoadFails(SaveWithField(Llama, field, value), field);

    [TestCase("vocab_size", 50257)]
    [TestCase("n_inner", 1 << 30)]
    [TestCase("n_positions", 1 << 20)]
    public void Gpt2_WidthsTheWeightsDoNotHave_NameTheField(string field, int value) => LoadFails(SaveWithField(Gpt2, field, value), field);

    [TestCase("vocab_size", int.MaxValue)]
    [TestCase("intermediate_size", 1 << 30)]
    [TestCase("num_key_value_heads", 4)]
    public void Llama_WidthsTheWeightsDoNotHave_NameTheField(string field, int value) => LoadFails(SaveWithField(Llama, field, value), field);

    [TestCase(100_000_000L)]
    [TestCase(int.MaxValue)]
    public void Llama_AbsurdMaxPositionEmbeddings_IsRejectedBeforeRopeTables(long value) =>
        LoadFails(SaveWithField(Llama, "max_position_embeddings", value), "max_position_embeddings");

    [Test]
    public void Llama_FewerLayersThanTheFile_StillLoads() // extra layers in the file go unused, as before
    {
        SaveWithField(Llama, "num_hidden_layers", 1);
        Assert.That(ModelCheckpoint.Load(dir).Config.LayerCount, Is.EqualTo(1));
    }

    [Test]
    public void FromTensors_ConfigNeedingMoreValuesThanTheFileHolds_FailsBeforeAllocating()
    {
        var tensors = new NamedTensors("w.safetensors");
        tensors.Add("model.embed_tokens.weight", [41, 8], new float[41 * 8]);
        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.FromTensors(Llama with { LayerCount = 1_000_000 }, tensors, "w.safetensors"))!;
        Assert.That(e.FilePath, Is.EqualTo("w.safetensors"));
    }

    [Test]
    public void CountParameters_EqualsTheLayoutTotal()
    {
        foreach (var c in new[] { Gpt2, Llama, Llama with { TiedEmbeddings = true } })
            Assert.That(ParameterLayout.CountParameters(c), Is.EqualTo(new ParameterLayout(c).TotalLength), c.ToString());
    }
}
