using Rlhf.Model;
using Rlhf.Onnx;
using static Rlhf.Tests.Onnx.OnnxTestModels;

namespace Rlhf.Tests.Onnx;

public class OnnxParityTests
{
    private string dir = "";

    [OneTimeSetUp]
    public void Setup() => dir = TempDir();

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(dir, recursive: true);

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (bool lora in new[] { false, true })
        {
            yield return new TestCaseData(Gpt2, lora).SetName($"Gpt2{(lora ? "Lora" : "")}");
            yield return new TestCaseData(LlamaGqa, lora).SetName($"LlamaGqa{(lora ? "Lora" : "")}");
        }

        yield return new TestCaseData(TransformerConfig.Llama(61, 24, 32, 2, 4, 4, 40, tiedEmbeddings: true), true).SetName("LlamaTiedMhaLora");
    }

    // Row 1 is left-padded by 2, row 2 by 4: padded queries see no key and the engine outputs zeros there.
    private static readonly int[] Tokens = [3, 1, 4, 1, 5, 9, 2, 0, 0, 6, 5, 3, 5, 8, 0, 0, 0, 0, 9, 7, 9];
    private static readonly float[] Mask = [1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1];
    private const int B = 3, T = 7;

    [TestCaseSource(nameof(Cases))]
    public void LeftPaddedBatchLogitsMatchTheEngine(TransformerConfig c, bool lora)
    {
        var model = NewModel(c, lora);
        model.Forward(Tokens, Mask, B, T);
        var expected = model.Logits.ToArray();
        string path = Export(model, dir, name: $"{c.Family}-{lora}-padded.onnx");
        using var ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        var actual = new float[B * T * c.VocabSize];
        ort.Forward(Tokens, Mask, B, T, actual);
        AssertRelClose(actual, expected, 1e-4, "logits");
        if (lora)
        {
            model.Forward(Tokens, Mask, B, T, useAdapter: false);
            Assert.That(model.Logits.SequenceEqual(expected), Is.False, "the adapter must change the logits for this test to mean anything");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void KvCacheStepsEqualTheNoCacheGraph(TransformerConfig c, bool lora)
    {
        var model = NewModel(c, lora);
        string path = Export(model, dir, name: $"{c.Family}-{lora}-cache.onnx");
        using var ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        int v = c.VocabSize;
        var full = new float[B * T * v];
        ort.Forward(Tokens, Mask, B, T, full);

        // Prompt of 4, then 3 single steps; the engine's cached decode is checked on the same schedule.
        const int p = 4;
        ort.ResetCache(B);
        var cache = new KvCache(c, B, T);
        var pt = new int[B * p];
        var pm = new float[B * p];
        for (int r = 0; r < B; r++)
        {
            Array.Copy(Tokens, r * T, pt, r * p, p);
            Array.Copy(Mask, r * T, pm, r * p, p);
        }

        var prefill = new float[B * p * v];
        ort.Append(pt, pm, p, prefill, lastOnly: false);
        for (int r = 0; r < B; r++)
        {
            for (int t = 0; t < p; t++) AssertRelClose(prefill.AsSpan((r * p + t) * v, v), full.AsSpan((r * T + t) * v, v), 1e-4, $"prefill r{r} t{t}");
        }

        var engineLast = new float[B * v];
        model.ForwardCached(pt, pm, p, cache, engineLast, lastOnly: true);
        var step = new int[B];
        var stepMask = new float[B];
        var got = new float[B * v];
        for (int t = p; t < T; t++)
        {
            for (int r = 0; r < B; r++)
            {
                step[r] = Tokens[r * T + t];
                stepMask[r] = Mask[r * T + t];
            }

            ort.Append(step, stepMask, 1, got, lastOnly: true);
            model.ForwardCached(step, stepMask, 1, cache, engineLast, lastOnly: true);
            for (int r = 0; r < B; r++)
            {
                AssertRelClose(got.AsSpan(r * v, v), full.AsSpan((r * T + t) * v, v), 1e-4, $"step t{t} r{r} vs no-cache graph");
                AssertRelClose(got.AsSpan(r * v, v), engineLast.AsSpan(r * v, v), 1e-4, $"step t{t} r{r} vs engine cache");
            }
        }

        Assert.That(ort.PastLength, Is.EqualTo(T));
    }

    [TestCaseSource(nameof(Cases))]
    public void GenerationGivesTheEngineTokens(TransformerConfig c, bool lora)
    {
        var model = NewModel(c, lora);
        string path = Export(model, dir, name: $"{c.Family}-{lora}-gen.onnx");
        using var ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        Assert.That(ort.ContextLength, Is.EqualTo(c.ContextLength));
        var ortGen = new OnnxGenerator(ort);
        var engineGen = new Generator(model);
        int[][] prompts = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3]];
        foreach (var options in new[]
                 {
                     new GenerationOptions(12, Temperature: 0f),
                     new GenerationOptions(12, Temperature: 0.9f, TopK: 8, TopP: 0.9f, Seed: 42, EosTokenId: 7),
                     new GenerationOptions(10, Temperature: 1.2f, Seed: 7, StopSequences: [[2, 2]]),
                 })
        {
            var e = engineGen.Generate(prompts, options);
            var o = ortGen.Generate(prompts, options);
            Assert.That(o.Tokens, Is.EqualTo(e.Tokens), $"tokens T={options.Temperature}");
            Assert.That(o.Mask, Is.EqualTo(e.Mask), "mask");
            Assert.That(o.Lengths, Is.EqualTo(e.Lengths), "lengths");
            AssertRelClose(o.LogProbs, e.LogProbs, 1e-4, "log-probs");
        }
    }

    [Test]
    public void GenerationStopsAtAnyIdOfAnEosListAsTheEngineDoes()
    {
        var c = Gpt2;
        var model = NewModel(c, lora: false);
        string path = Export(model, dir, name: "eos-list.onnx");
        using var ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        var ortGen = new OnnxGenerator(ort);
        int[][] prompts = [[3, 1, 4, 1, 5], [9, 2]];
        var free = ortGen.Generate(prompts, new GenerationOptions(8, Temperature: 0f));
        int[] stops = [Rlhf.Tests.Model.GenerationTests.NeverGenerated(free, c.VocabSize), free.Tokens[2]];
        var options = new GenerationOptions(8, Temperature: 0f, PadTokenId: 0, EosTokenIds: stops);
        var o = ortGen.Generate(prompts, options);
        Assert.That(o.Lengths[0], Is.LessThanOrEqualTo(3));
        Rlhf.Tests.Model.GenerationTests.AssertCutAtFirstStop(free, o, stops, pad: 0);
        var e = new Generator(model).Generate(prompts, options);
        Assert.That(o.Tokens, Is.EqualTo(e.Tokens), "tokens");
        Assert.That(o.Lengths, Is.EqualTo(e.Lengths), "lengths");
    }

    [Test]
    public void LoraInputsServeEveryAdapterVersionWithoutReexport()
    {
        var c = LlamaGqa;
        var model = NewModel(c, lora: true);
        string path = Export(model, dir, new OnnxExportOptions { LoraInputs = true }, "lora-inputs.onnx");
        using var ort = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: 1));
        ort.UseAdapter(model.Adapter);
        var actual = new float[B * T * c.VocabSize];
        for (ulong version = 0; version < 2; version++)
        {
            RandomizeB(model.Adapter!, 100 + version);
            model.Forward(Tokens, Mask, B, T);
            ort.Forward(Tokens, Mask, B, T, actual);
            AssertRelClose(actual, model.Logits, 1e-4, $"adapter version {version}");
        }
    }

    [Test]
    public void ValueHeadOutputMatchesTheEngineHead()
    {
        var c = Gpt2;
        var model = NewModel(c, lora: false);
        var head = ScoreHead.Value(c.ModelDim);
        head.InitializeRandom(9, std: 0.5f);
        head.Parameters[^1] = 0.25f;
        string path = Export(model, dir, new OnnxExportOptions { ValueHead = head }, "value-head.onnx");
        model.Forward(Tokens, Mask, B, T);
        var expected = new float[B * T];
        head.Forward(model.FinalHidden, Mask, B, T, expected);
        using var session = new OnnxModelSession(path, new OnnxSessionOptions(Threads: 1));
        using var inputs = OnnxTestInputs.FullSequence(c, Tokens, Mask, B, T);
        using var outputs = session.Run(inputs.Names, inputs.Values, [OnnxNames.Values]);
        AssertRelClose(outputs[0].GetTensorDataAsSpan<float>(), expected, 1e-4, "values");
    }
}
