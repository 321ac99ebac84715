using Rlhf.Formats;
using static Rlhf.Tests.Formats.FormatTestFiles;

namespace Rlhf.Tests.Formats;

public class HfCheckpointTests
{
    [Test]
    public void WriteThenRead_RoundTripsConfigAndTensors()
    {
        using var dir = new TempDir();
        var t = new NamedTensors();
        t.Add("transformer.wte.weight", [11, 8], Random(88, 1));
        t.Add("transformer.ln_f.weight", [8], Random(8, 2));
        var ckpt = new HfCheckpoint(HfModelConfig.Gpt2(8, 1, 2, maxPositions: 16, vocabSize: 11), t);
        HfCheckpoint.Write(dir.Path, ckpt);

        var back = HfCheckpoint.Read(dir.Path);
        Assert.That(back.Config, Is.EqualTo(ckpt.Config));
        Assert.That(back.Tensors.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(back.Tensors.Get("transformer.wte.weight", [11, 8]), Is.EqualTo(t["transformer.wte.weight"].Data));
        Assert.That(back.Tensors.Get("transformer.ln_f.weight", [8]), Is.EqualTo(t["transformer.ln_f.weight"].Data));
    }

    private static void WriteShards(TempDir dir, string indexJson)
    {
        var a = new NamedTensors();
        a.Add("x", [2], [1f, 2f]);
        Safetensors.Write(dir.File("model-00001-of-00002.safetensors"), a);
        var b = new NamedTensors();
        b.Add("y", [1], [3f]);
        Safetensors.Write(dir.File("model-00002-of-00002.safetensors"), b);
        File.WriteAllText(dir.File("model.safetensors.index.json"), indexJson);
    }

    [Test]
    public void ReadTensors_Sharded_FollowsIndex()
    {
        using var dir = new TempDir();
        WriteShards(dir, """
            {"metadata": {"total_size": 12}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}
            """);
        var t = HfCheckpoint.ReadTensors(dir.Path);
        Assert.That(t.Get("x", [2]), Is.EqualTo(new[] { 1f, 2f }));
        Assert.That(t.Get("y", [1]), Is.EqualTo(new[] { 3f }));
    }

    [Test]
    public void ReadTensors_IndexListsMissingTensor_NamesIndexAndTensor()
    {
        using var dir = new TempDir();
        WriteShards(dir, """
            {"weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}}
            """);
        var e = Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.ReadTensors(dir.Path))!;
        Assert.That(e.Message, Is.EqualTo($"file {dir.File("model.safetensors.index.json")}: tensor z is listed under model-00002-of-00002.safetensors but that shard does not hold it"));
    }

    [Test]
    public void ReadTensors_ShardHoldsUnlistedTensor_NamesShardAndTensor()
    {
        using var dir = new TempDir();
        WriteShards(dir, """{"weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}""");
        var extra = new NamedTensors();
        extra.Add("w", [1], [0f]);
        extra.Add("x", [2], [1f, 2f]);
        string shard1 = dir.File("model-00001-of-00002.safetensors");
        Safetensors.Write(shard1, extra);
        var e = Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.ReadTensors(dir.Path))!;
        Assert.That(e.Message, Is.EqualTo($"file {shard1}: tensor w is in shard model-00001-of-00002.safetensors but the index lists it under no shard"));
    }

    [Test]
    public void ReadTensors_NoWeights_IsFileNotFound()
    {
        using var dir = new TempDir();
        Assert.Throws<FileNotFoundException>(() => HfCheckpoint.ReadTensors(dir.Path));
    }
}
