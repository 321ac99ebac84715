using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Model;
using Rlhf.Tests.Formats;

namespace Rlhf.Tests.Checkpoints;

/// <summary>The context length a command checks options against is the one the loader would see, or none when the loader would refuse the file.</summary>
public class CheckpointContextTests
{
    private static string WriteHeader(TempDir dir, Llama2cHeader header)
    {
        string path = dir.File("model.bin");
        using var fs = File.Create(path);
        header.Write(fs);
        return path;
    }

    [Test]
    public void Llama2cFile_ItsSeqLen()
    {
        using var dir = new TempDir();
        Assert.That(CheckpointContext.TryRead(WriteHeader(dir, new Llama2cHeader(8, 12, 1, 2, 2, 5, 48, false))), Is.EqualTo(48));
    }

    [Test]
    public void HfFolder_ItsContextLength()
    {
        using var dir = new TempDir();
        ModelCheckpoint.SaveHf(new TransformerModel(TransformerConfig.Gpt2(vocabSize: 11, contextLength: 24, modelDim: 8, layerCount: 1, headCount: 2)), dir.Path);
        Assert.That(CheckpointContext.TryRead(dir.Path), Is.EqualTo(24));
    }

    [TestCase(8, 3, 1, 5)] // n_heads = 3 does not split dim 8
    [TestCase(8, 2, 3, 5)] // n_kv_heads = 3 does not divide n_heads = 2
    [TestCase(8, 2, 2, 0)] // no vocabulary
    [TestCase(0x616b3432, 2, 2, 5)] // a versioned export's magic where dim should be
    public void HeaderTheLoaderRefuses_IsNoContext(int dim, int heads, int kvHeads, int vocab)
    {
        using var dir = new TempDir();
        string path = WriteHeader(dir, new Llama2cHeader(dim, 12, 1, heads, kvHeads, vocab, 48, true));
        Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path));
        Assert.That(CheckpointContext.TryRead(path), Is.Null);
    }

    [Test]
    public void ShortOrMissingFile_IsNoContext()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("short.bin"), new byte[20]);
        Assert.That(CheckpointContext.TryRead(dir.File("short.bin")), Is.Null);
        Assert.That(CheckpointContext.TryRead(dir.File("nothing.bin")), Is.Null);
    }
}
