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
