using Rlhf.Tokenizers;
using Rlhf.Model;
using Rlhf.Onnx;
using static Rlhf.Tests.Onnx.OnnxTestModels;

namespace Rlhf.Tests.Onnx;

public class OnnxClassifierTests
{
    private const string Config = """{"id2label": {"0": "neg", "1": "neutral", "2": "toxic"}, "label2id": {"neg": 0, "neutral": 1, "toxic": 2}}""";
    private string dir = "";

    [OneTimeSetUp]
    public void Setup() => dir = TempDir();

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(dir, recursive: true);

    private (TransformerModel Model, ScoreHead Head, string Folder) MakeClassifier(TransformerConfig c, string name)
    {
        var model = NewModel(c, lora: false, seed: 23);
        var head = ScoreHead.Classification(c.ModelDim, 3);
        head.InitializeRandom(4, std: 0.5f);
        head.LoadTensor("score.bias", [0.1f, -0.2f, 0.3f]);
        string folder = Path.Combine(dir, name);
        Directory.CreateDirectory(folder);
        OnnxExporter.ExportSequenceClassifier(model, head, Path.Combine(folder, "model.onnx"));
        File.WriteAllText(Path.Combine(folder, "config.json"), Config);
        return (model, head, folder);
    }

    /// <summary>The engine's classifier logits [rows, 3] on right-padded rows.</summary>
    private static float[] EngineLogits(TransformerModel model, ScoreHead head, IReadOnlyList<int[]> rows)
    {
        int b = rows.Count, t = 0;
        foreach (var r in rows) t = Math.Max(t, r.Length);
        var tokens = new int[b * t];
        var mask = new float[b * t];
        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < rows[i].Length; j++) (tokens[i * t + j], mask[i * t + j]) = (rows[i][j], 1f);
        }

        model.Forward(tokens, mask, b, t, computeLogits: false);
        var scores = new float[b * head.Outputs];
        head.Forward(model.FinalHidden, mask, b, t, scores);
        return scores;
    }

    public static IEnumerable<TestCaseData> Families()
    {
        yield return new TestCaseData(Gpt2).SetName("Gpt2Classifier");
        yield return new TestCaseData(LlamaGqa).SetName("LlamaGqaClassifier");
    }

    [TestCaseSource(nameof(Families))]
    public void ExportedClassifierScoresLikeTheEngine(TransformerConfig c)
    {
        var (model, head, folder) = MakeClassifier(c, $"cls-{c.Family}");
        int[][] rows = [[3, 1, 4, 1, 5, 9, 2], [6, 5], [3, 5, 8, 9]];
        var expected = EngineLogits(model, head, rows);
        using var cls = new OnnxSequenceClassifier(folder, "toxic", ClassifierTokenizer.FromTokenizer(new ByteTokenizer()), options: new OnnxSessionOptions(Threads: 1), batchSize: 2);
        Assert.That(cls.WantedClass, Is.EqualTo(2));
        var logits = new float[rows.Length * 3];
        cls.Logits(rows, logits);
        AssertRelClose(logits, expected, 1e-4, "classifier logits");
        var rewards = new float[rows.Length];
        cls.ScoreTokens(rows, rewards);
        for (int i = 0; i < rows.Length; i++) Assert.That(rewards[i], Is.EqualTo(logits[i * 3 + 2]), $"reward {i} is the toxic logit");
    }

    [Test]
    public void TextRewardAndProbabilitiesFollowTheEngineOnTheTokenizedText()
    {
        var c = TransformerConfig.Gpt2(ByteTokenizer.Size, 48, 32, 2, 4);
        var (model, head, folder) = MakeClassifier(c, "cls-bytes");
        var tok = new ByteTokenizer();
        string[] prompts = ["You are ", "Thanks for ", "ok"];
        string[] responses = ["awful.", "the help!", ""];
        var rows = new int[3][];
        for (int i = 0; i < 3; i++) rows[i] = tok.Encode(prompts[i] + responses[i]);
        var expected = EngineLogits(model, head, rows);
        using var cls = new OnnxSequenceClassifier(folder, "1", ClassifierTokenizer.FromTokenizer(tok, ByteTokenizer.Pad), options: new OnnxSessionOptions(Threads: 1));
        var rewards = new float[3];
        cls.Score(prompts, responses, rewards);
        var probs = new float[9];
        cls.Probabilities(prompts, responses, probs);
        for (int i = 0; i < 3; i++)
        {
            Assert.That(rewards[i], Is.EqualTo(expected[i * 3 + 1]).Within(1e-4 * Math.Max(1, Math.Abs(expected[i * 3 + 1]))), $"reward {i}");
            double max = Math.Max(expected[i * 3], Math.Max(expected[i * 3 + 1], expected[i * 3 + 2])), z = 0;
            for (int k = 0; k < 3; k++) z += Math.Exp(expected[i * 3 + k] - max);
            for (int k = 0; k < 3; k++) Assert.That(probs[i * 3 + k], Is.EqualTo(Math.Exp(expected[i * 3 + k] - max) / z).Within(1e-5), $"p[{i},{k}]");
        }
    }

    [Test]
    public void WordPieceTokenizerComesFromTheModelFolder()
    {
        var (model, head, folder) = MakeClassifier(Gpt2, "cls-wordpiece");
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "!"]);
        using var cls = new OnnxSequenceClassifier(folder, "neutral", options: new OnnxSessionOptions(Threads: 1));
        var tok = ClassifierTokenizer.Load(folder);
        Assert.That(tok.Encode("Hello worlds!"), Is.EqualTo(new[] { 2, 5, 6, 7, 8, 3 }));
        var rewards = new float[2];
        cls.Score(["Hello ", "hello"], ["worlds!", ""], rewards);
        var expected = EngineLogits(model, head, [[2, 5, 6, 7, 8, 3], [2, 5, 3]]);
        Assert.That(rewards[0], Is.EqualTo(expected[1]).Within(1e-4 * Math.Max(1, Math.Abs(expected[1]))));
        Assert.That(rewards[1], Is.EqualTo(expected[4]).Within(1e-4 * Math.Max(1, Math.Abs(expected[4]))));

        // Cut as Hugging Face truncates: the text is cut and [SEP] stays last (the rows were cut after MaxLength ids,
        // dropping it, so long texts were scored unlike a transformers pipeline).
        Assert.That(tok.Encode("Hello worlds!", maxLength: 4), Is.EqualTo(new[] { 2, 5, 6, 3 }));
        using var cut = new OnnxSequenceClassifier(folder, "neutral", options: new OnnxSessionOptions(Threads: 1), maxLength: 4);
        var cutReward = new float[1];
        cut.Score(["Hello "], ["worlds!"], cutReward);
        var cutExpected = EngineLogits(model, head, [[2, 5, 6, 3]]);
        Assert.That(cutReward[0], Is.EqualTo(cutExpected[1]).Within(1e-4 * Math.Max(1, Math.Abs(cutExpected[1]))));

        // A scorer built from a spec owns its ONNX session, and its users dispose it (it used to have no Dispose).
        var scorer = Rlhf.Ppo.RewardSpecs.TryScorer(Path.Combine(folder, "model.onnx") + "#neutral")!;
        var probability = new float[1];
        scorer.Probabilities(["hello"], probability);
        Assert.That(scorer, Is.InstanceOf<IDisposable>());
        ((IDisposable)scorer).Dispose();
        Assert.That(() => scorer.Probabilities(["hello"], probability), Throws.InstanceOf<ObjectDisposedException>());
    }

    [Test]
    public void UnknownLabelNamesTheConfigAndTheLabel()
    {
        var (_, _, folder) = MakeClassifier(Gpt2, "cls-label");
        var e = Assert.Throws<OnnxModelException>(() => new OnnxSequenceClassifier(folder, "hateful", ClassifierTokenizer.FromTokenizer(new ByteTokenizer())));
        Assert.That(e!.Message, Does.Contain(Path.Combine(folder, "config.json")).And.Contain("'hateful'").And.Contain("toxic"));
        var e2 = Assert.Throws<OnnxModelException>(() => new OnnxSequenceClassifier(folder, "3", ClassifierTokenizer.FromTokenizer(new ByteTokenizer())));
        Assert.That(e2!.Message, Does.Contain("model.onnx").And.Contain("class index 3"));
    }
}

public class OnnxForeignClassifierTests
{
    /// <summary>
    /// A BERT-shaped graph (input_ids, attention_mask, token_type_ids -> logits [B,2]) whose logits are
    /// [number of real tokens, sum of token_type_ids]: proves right padding, truncation and zero token types.
    /// </summary>
    [Test]
    public void TokenTypeIdsAreFedAsZerosAndRowsArePaddedAndCut()
    {
        string dir = OnnxTestModels.TempDir();
        try
        {
            var g = new OnnxGraphBuilder("bert-like", 17);
            g.Input(OnnxNames.InputIds, OnnxDataType.Int64, "batch", "sequence");
            string mask = g.Input(OnnxNames.AttentionMask, OnnxDataType.Int64, "batch", "sequence");
            string types = g.Input(OnnxNames.TokenTypeIds, OnnxDataType.Int64, "batch", "sequence");
            string Sum(string x) => g.Node("ReduceSum", [g.Node("Cast", [x], null, OnnxGraphBuilder.Attr("to", (long)OnnxDataType.Float)), g.ConstInt64([1])], null, OnnxGraphBuilder.Attr("keepdims", 1L));
            g.Output(g.Node("Concat", [Sum(mask), Sum(types)], null, OnnxGraphBuilder.Attr("axis", 1L)), OnnxNames.Logits, OnnxDataType.Float, "batch", 2);
            string path = Path.Combine(dir, "bert-like.onnx");
            g.Save(path, OnnxExportOptions.TwoGigabytes);
            using var cls = new OnnxSequenceClassifier(path, "0", ClassifierTokenizer.FromTokenizer(new ByteTokenizer(), ByteTokenizer.Pad), maxLength: 6);
            Assert.That(cls.ClassCount, Is.EqualTo(2));
            var rewards = new float[3];
            cls.Score(["ab", "abcdefgh", ""], ["c", "", "x"], rewards);
            Assert.That(rewards, Is.EqualTo(new[] { 3f, 6f, 1f }));
            var probs = new float[6];
            cls.Probabilities(["ab"], ["c"], probs.AsSpan(0, 2));
            Assert.That(probs[0], Is.EqualTo(1 / (1 + Math.Exp(-3))).Within(1e-6), "softmax([3, 0])");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ProtoVarintsUseSevenBitGroups()
    {
        var w = new ProtoWriter();
        w.Varint(1, 300);
        w.Varint(2, -1);
        Assert.That(w.Written.ToArray(), Is.EqualTo(new byte[] { 0x08, 0xAC, 0x02, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }));
        Assert.That(ProtoWriter.FieldSize(9, 300), Is.EqualTo(1 + 2 + 300));
    }
}
