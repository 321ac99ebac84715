using Microsoft.ML.OnnxRuntime;
using Rlhf.Onnx;
using Rlhf.Tokenizers;
using static Rlhf.Tests.Onnx.OnnxTestModels;

namespace Rlhf.Tests.Onnx;

public class OnnxBadInputTests
{
    private static readonly int[] Tokens = [3, 1, 4, 1, 5, 9];
    private static readonly float[] Mask = [1, 1, 1, 0, 1, 1];
    private string dir = "", path = "";

    [OneTimeSetUp]
    public void Setup()
    {
        dir = TempDir();
        path = Export(NewModel(Gpt2, lora: false), dir);
    }

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(dir, recursive: true);

    private static string Run(OnnxModelSession s, OnnxTestInputs inputs)
    {
        var e = Assert.Throws<ArgumentException>(() => s.Run(inputs.Names, inputs.Values, [OnnxNames.Logits]).Dispose());
        Assert.That(e!.Message, Does.Contain(s.ModelPath));
        return e.Message;
    }

    [Test]
    public void ARejectedAppendLeavesTheCacheAsItWas()
    {
        // A bad token in row 1 used to throw after row 0's valid count had moved: the next call's positions were off
        // by one and its logits wrong (by up to 2.3 in the audit's run).
        using var clean = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        using var rejected = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        int v = clean.VocabSize;
        foreach (var lm in new[] { clean, rejected })
        {
            lm.ResetCache(2);
            lm.Append([1, 2, 3, 4], [1, 1, 1, 1], 2, new float[2 * v], lastOnly: true);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => rejected.Append([5, v + 7], [1, 1], 1, new float[2 * v], lastOnly: true));
        Assert.Throws<ArgumentException>(() => rejected.Append([5, 6], [1, 0.5f], 1, new float[2 * v], lastOnly: true));
        var expected = new float[2 * v];
        var actual = new float[2 * v];
        clean.Append([5, 6], [1, 1], 1, expected, lastOnly: true);
        rejected.Append([5, 6], [1, 1], 1, actual, lastOnly: true);
        Assert.That(actual, Is.EqualTo(expected));
    }

    [Test]
    public void MissingInputIsNamed()
    {
        using var s = new OnnxModelSession(path);
        using var inputs = OnnxTestInputs.FullSequence(Gpt2, Tokens, Mask, 2, 3);
        inputs.Values[2].Dispose();
        inputs.Names.RemoveAt(2);
        inputs.Values.RemoveAt(2);
        Assert.That(Run(s, inputs), Does.Contain("'position_ids' was not given"));
    }

    [Test]
    public void UnknownInputIsNamed()
    {
        using var s = new OnnxModelSession(path);
        using var inputs = OnnxTestInputs.FullSequence(Gpt2, Tokens, Mask, 2, 3);
        inputs.Add("input_idz", OrtValue.CreateTensorValueFromMemory(new long[6], [2, 3]));
        Assert.That(Run(s, inputs), Does.Contain("no input 'input_idz'"));
    }

    [Test]
    public void WrongDtypeIsNamed()
    {
        using var s = new OnnxModelSession(path);
        using var inputs = OnnxTestInputs.FullSequence(Gpt2, Tokens, Mask, 2, 3);
        inputs.Values[0].Dispose();
        inputs.Values[0] = OrtValue.CreateTensorValueFromMemory(new float[6], [2, 3]);
        Assert.That(Run(s, inputs), Does.Contain("input 'input_ids' must be Int64, got Float"));
    }

    [Test]
    public void WrongRankAndFixedDimensionAreNamed()
    {
        using var s = new OnnxModelSession(path);
        using var inputs = OnnxTestInputs.FullSequence(Gpt2, Tokens, Mask, 2, 3);
        inputs.Values[1].Dispose();
        inputs.Values[1] = OrtValue.CreateTensorValueFromMemory(new long[6], [6]);
        Assert.That(Run(s, inputs), Does.Contain("input 'attention_mask' must have rank 2"));
        using var inputs2 = OnnxTestInputs.FullSequence(Gpt2, Tokens, Mask, 2, 3);
        inputs2.Values[3].Dispose();
        inputs2.Values[3] = OrtValue.CreateTensorValueFromMemory(new float[2 * 3 * 0 * 8], [2, 3, 0, 8]);
        Assert.That(Run(s, inputs2), Does.Contain("input 'past_key_values.0.key' dimension 1 must be 4, got 3"));
    }

    [Test]
    public void ModelWithoutLogitsIsNamed()
    {
        // A graph that classifies into "scores" instead of "logits".
        var g = new OnnxGraphBuilder("no-logits", 17);
        string ids = g.Input(OnnxNames.InputIds, OnnxDataType.Int64, "batch", "sequence");
        g.Input(OnnxNames.AttentionMask, OnnxDataType.Int64, "batch", "sequence");
        string f = g.Node("Cast", [ids], null, OnnxGraphBuilder.Attr("to", (long)OnnxDataType.Float));
        g.Output(g.Node("ReduceSum", [f, g.ConstInt64([1])], null, OnnxGraphBuilder.Attr("keepdims", 1L)), "scores", OnnxDataType.Float, "batch", 1);
        string bad = Path.Combine(dir, "no-logits.onnx");
        g.Save(bad, OnnxExportOptions.TwoGigabytes);
        var e = Assert.Throws<OnnxModelException>(() => new OnnxSequenceClassifier(bad, "0", ClassifierTokenizer.FromTokenizer(new ByteTokenizer())));
        Assert.That(e!.Message, Does.Contain(bad).And.Contain("no output 'logits'"));
        Assert.That(e.TensorName, Is.EqualTo("logits"));
        var e2 = Assert.Throws<OnnxModelException>(() => new OnnxCausalLm(bad));
        Assert.That(e2!.Message, Does.Contain(bad).And.Contain("'logits'"));
    }

    [Test]
    public void CausalLmRejectsTokensOutsideTheVocabularyAndBadMasks()
    {
        using var lm = new OnnxCausalLm(path);
        lm.ResetCache(1);
        var logits = new float[Gpt2.VocabSize];
        Assert.Throws<ArgumentOutOfRangeException>(() => lm.Append([Gpt2.VocabSize], [1f], 1, logits, lastOnly: true));
        lm.ResetCache(1);
        Assert.Throws<ArgumentException>(() => lm.Append([1], [0.5f], 1, logits, lastOnly: true));
        lm.ResetCache(1);
        int ctx = Gpt2.ContextLength;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => lm.Append(new int[ctx + 1], new float[ctx + 1], ctx + 1, new float[Gpt2.VocabSize], lastOnly: true));
        Assert.That(e!.Message, Does.Contain("context length 24").And.Contain(path));
    }
}
