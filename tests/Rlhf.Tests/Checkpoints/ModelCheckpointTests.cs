using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Model;

namespace Rlhf.Tests.Checkpoints;

public class ModelCheckpointTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder() => dir = Directory.CreateTempSubdirectory("ckpt-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private static IEnumerable<TransformerConfig> Configs()
    {
        yield return TransformerConfig.Gpt2(vocabSize: 37, contextLength: 16, modelDim: 8, layerCount: 2, headCount: 2);
        yield return TransformerConfig.Llama(vocabSize: 41, contextLength: 16, modelDim: 8, layerCount: 2, headCount: 4, kvHeadCount: 2, hiddenDim: 12);
    }

    [TestCaseSource(nameof(Configs))]
    public void SaveThenLoad_GivesIdenticalWeightsAndLogits(TransformerConfig config)
    {
        var model = new TransformerModel(config);
        model.InitializeRandom(seed: 5);
        ModelCheckpoint.SaveHf(model, dir);
        var loaded = ModelCheckpoint.Load(dir);
        Assert.That(loaded.Config, Is.EqualTo(config));
        Assert.That(loaded.Parameters, Is.EqualTo(model.Parameters));

        int[] tokens = [1, 2, 3, 4, 5, 6];
        float[] mask = [1, 1, 1, 0, 1, 1];
        model.Forward(tokens, mask, 2, 3);
        loaded.Forward(tokens, mask, 2, 3);
        Assert.That(loaded.Logits.ToArray(), Is.EqualTo(model.Logits.ToArray()));
    }

    /// <summary>A saved model whose config.json eos_token_id is replaced by <paramref name="eos"/> (JSON text).</summary>
    private string SavedWithEos(TransformerConfig config, string eos)
    {
        var model = new TransformerModel(config);
        model.InitializeRandom(seed: 3);
        ModelCheckpoint.SaveHf(model, dir);
        string configPath = Path.Combine(dir, "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json["eos_token_id"] = System.Text.Json.Nodes.JsonNode.Parse(eos);
        File.WriteAllText(configPath, json.ToJsonString());
        return configPath;
    }

    private static string EosJson(string configPath) =>
        System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject()["eos_token_id"]?.ToJsonString() ?? "absent";

    [TestCaseSource(nameof(Configs))]
    public void EosTokenIdList_IsLoadedAndSavedBack(TransformerConfig config)
    {
        // 40 is past the GPT-2 test vocabulary (37), so it is left out there, as a single id past the vocabulary is.
        string configPath = SavedWithEos(config, "[5, 40, -1, 2]");
        var loaded = ModelCheckpoint.Load(dir);
        var expected = config.VocabSize > 40 ? TokenIdList.List([5, 40, 2]) : TokenIdList.List([5, 2]);
        Assert.That(loaded.Config.EosTokenIds, Is.EqualTo(expected));
        Assert.That(loaded.Config, Is.EqualTo(config with { EosTokenIds = expected }));

        // Saving (what sft, train-reward and ppo do) writes the list back; loading that again gives the same model config.
        Directory.Delete(dir, recursive: true);
        ModelCheckpoint.SaveHf(loaded, dir);
        Assert.That(EosJson(configPath), Is.EqualTo(config.VocabSize > 40 ? "[5,40,2]" : "[5,2]"));
        Assert.That(ModelCheckpoint.Load(dir).Config, Is.EqualTo(loaded.Config));
    }

    [TestCaseSource(nameof(Configs))]
    public void SingleEosTokenId_LeavesTheModelAndTheSavedConfigAsBefore(TransformerConfig config)
    {
        // One id is the tokenizer's EOS by convention: the model carries no list, and saving writes what it always wrote.
        ModelCheckpoint.SaveHf(new TransformerModel(config), dir);
        string configPath = Path.Combine(dir, "config.json");
        byte[] plain = File.ReadAllBytes(configPath);
        SavedWithEos(config, "5");
        var loaded = ModelCheckpoint.Load(dir);
        Assert.That(loaded.Config.EosTokenIds, Is.Null);
        Assert.That(loaded.Config, Is.EqualTo(config));
        ModelCheckpoint.SaveHf(loaded, dir);
        Assert.That(File.ReadAllBytes(configPath), Is.EqualTo(plain));
    }

    [Test]
    public void BadEosTokenIdList_NamesFileAndField()
    {
        string configPath = SavedWithEos(Configs().Last(), "[2, -3]");
        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir))!;
        Assert.That(e.Message, Is.EqualTo($"file {configPath}: eos_token_id[1] = -3 is outside the vocabulary [0, 41)"));
        Assert.That(e.Item, Is.EqualTo("eos_token_id"));
    }

    [Test]
    public void MissingTensor_NamesFileAndTensor()
    {
        var model = new TransformerModel(Configs().Last());
        model.InitializeRandom(seed: 1);
        ModelCheckpoint.SaveHf(model, dir);
        var tensors = Safetensors.Read(Path.Combine(dir, "model.safetensors"));
        var pruned = new NamedTensors();
        foreach (var t in tensors.Where(t => t.Name != "model.layers.1.mlp.up_proj.weight")) pruned.Add(t.Name, t.Shape, t.Data);
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), pruned.Select(t => new TensorView(t.Name, t.Shape, t.Data)).ToList(), null);
        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir));
        Assert.That(e!.Message, Does.Contain("model.safetensors").And.Contain("model.layers.1.mlp.up_proj.weight is missing"));
    }

    [Test]
    public void ShapeMismatch_NamesFileAndTensor()
    {
        var model = new TransformerModel(Configs().First());
        model.InitializeRandom(seed: 1);
        ModelCheckpoint.SaveHf(model, dir);
        // A config that says the model is wider than its tensors.
        string configPath = Path.Combine(dir, "config.json");
        File.WriteAllText(configPath, File.ReadAllText(configPath).Replace("\"vocab_size\": 37", "\"vocab_size\": 38"));
        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir));
        // The config is what disagrees, so the error names config.json and the field, and what the weights hold.
        Assert.That(e!.Item, Is.EqualTo("vocab_size"));
        Assert.That(e.Message, Does.Contain("config.json").And.Contain("transformer.wte.weight").And.Contain("[38, 8]").And.Contain("[37, 8]"));
    }

    [Test]
    public void MissingPath_IsAClearError()
    {
        var e = Assert.Throws<FileNotFoundException>(() => ModelCheckpoint.Load(Path.Combine(dir, "nothing-here")));
        Assert.That(e!.Message, Does.Contain("nothing-here"));
    }

    [Test]
    public void TokenOutsideTheVocabulary_IsRejected()
    {
        var model = new TransformerModel(Configs().First());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward([1, 37], [1, 1], 1, 2));
        Assert.That(e!.Message, Does.Contain("index 1").And.Contain("[0, 37)"));
    }
}
