using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.IO;

namespace Rlhf.Tests.Checkpoints;

/// <summary>One answer to "is this failed load the user's files?", shared by every command that loads a model.</summary>
public class ModelFilesTests
{
    private static IEnumerable<Exception> FilesFaults()
    {
        yield return new CheckpointFormatException("m/model.safetensors", "wte", "tensor wte is missing");
        yield return new FileNotFoundException("folder m has neither model.safetensors nor model.safetensors.index.json");
        yield return new DirectoryNotFoundException("a is not a folder");
        yield return new ArgumentException("adapter targets c_attn, which the model does not have");
    }

    [TestCaseSource(nameof(FilesFaults))]
    public void FilesFault_IsBadInput_NamingTheSubjectThenTheOriginalMessage(Exception fault)
    {
        var e = Assert.Throws<ModelFileException>(() => ModelFiles.Load<int>("--model", () => throw fault))!;
        Assert.That(e.Message, Is.EqualTo($"--model: {fault.Message}"));
        Assert.That(e.InnerException, Is.SameAs(fault));
        Assert.That(e, Is.InstanceOf<InvalidInputException>(), "the command line's exit 2");
        Assert.That(Assert.Throws<ModelFileException>(() => ModelFiles.Load(null, () => throw fault))!.Message, Is.EqualTo(fault.Message), "no subject: the message as it was");
    }

    [Test]
    public void OtherFailures_PassThroughUnchanged()
    {
        var bug = new InvalidOperationException("a bug");
        Assert.That(Assert.Throws<InvalidOperationException>(() => ModelFiles.Load<int>("--model", () => throw bug)), Is.SameAs(bug));
        var said = new InvalidInputException("adapter a: no LoRA A/B tensors.");
        Assert.That(Assert.Throws<InvalidInputException>(() => ModelFiles.Load<int>("--adapter", () => throw said)), Is.SameAs(said), "already worded for the user");
        Assert.That(ModelFiles.Load("--model", () => 7), Is.EqualTo(7));
    }

    [Test]
    public void MalformedFile_IsBadInputWhereverItIsRead() =>
        Assert.That(new CheckpointFormatException("tok.bin", null, "truncated"), Is.InstanceOf<InvalidInputException>());
}
