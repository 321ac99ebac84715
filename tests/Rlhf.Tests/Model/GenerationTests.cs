using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

public class GenerationTests
{
    public static IEnumerable<TestCaseData> Configs()
    {
        yield return new TestCaseData(TransformerConfig.Gpt2(13, 12, 8, 2, 2)).SetName("Gpt2");
        yield return new TestCaseData(TransformerConfig.Llama(13, 12, 8, 2, 4, 2, 12)).SetName("Llama");
        yield return new TestCaseData(TransformerConfig.Llama(13, 12, 8, 2, 2, 1, 12, tiedEmbeddings: true)).SetName("LlamaTied");
    }

    private static TransformerModel Model(TransformerConfig c, bool lora = false)
    {
        var m = new TransformerModel(c);
        m.InitializeRandom(17, std: 0.4f);
        if (lora)
        {
            var a = m.AttachAdapter(LoraConfig.Default(c.Family, rank: 2, alpha: 4f), 2);
            var rng = new Xoshiro256(5);
            foreach (var s in a.Slots)
                for (int i = 0; i < s.Out * a.Rank; i++) a.Parameters[s.BOffset + i] = (float)(0.3 * rng.NextGaussian());
        }

        return m;
    }

    [TestCaseSource(nameof(Configs))]
    public void KvCacheDecodeGivesTheFullForwardLogits(TransformerConfig c)
    {
        foreach (bool lora in new[] { false, true })
        {
            var model = Model(c, lora);
            const int b = 2, p = 4, steps = 5, total = p + steps;
            int v = c.VocabSize;
            // Row 1 is left-padded; at step 2 row 0 feeds a masked (finished) position.
            var tokens = new[] { 3, 1, 4, 1, 5, 9, 2, 6, 5, /* row 1 */ 0, 0, 7, 2, 8, 1, 8, 2, 8 };
            var mask = new float[] { 1, 1, 1, 1, 1, 1, 0, 1, 1, /* row 1 */ 0, 0, 1, 1, 1, 1, 1, 1, 1 };
            model.Forward(tokens, mask, b, total);
            var full = model.Logits.ToArray();

            var cache = new KvCache(c, b, total);
            var pt = new int[b * p];
            var pm = new float[b * p];
            for (int r = 0; r < b; r++)
            {
                Array.Copy(tokens, r * total, pt, r * p, p);
                Array.Copy(mask, r * total, pm, r * p, p);
            }

            var prefill = new float[b * p * v];
            model.ForwardCached(pt, pm, p, cache, prefill, lastOnly: false);
            for (int r = 0; r < b; r++)
            {
                for (int t = 0; t < p; t++)
                    AssertClose(prefill.AsSpan((r * p + t) * v, v), ToDouble(full.AsSpan((r * total + t) * v, v)), 1e-5, $"prefill r{r} t{t} lora={lora}");
            }

            var step = new float[b * v];
            for (int s = 0; s < steps; s++)
            {
                int t = p + s;
                model.ForwardCached([tokens[t], tokens[total + t]], [mask[t], mask[total + t]], 1, cache, step, lastOnly: true);
                for (int r = 0; r < b; r++)
                {
                    if (mask[r * total + t] == 0f) continue;
                    AssertClose(step.AsSpan(r * v, v), ToDouble(full.AsSpan((r * total + t) * v, v)), 1e-5, $"decode r{r} t{t} lora={lora}");
                }
            }

            Assert.Throws<ArgumentOutOfRangeException>(() => model.ForwardCached([1, 1], [1, 1], 1, cache, step, lastOnly: true));
        }
    }

    [TestCaseSource(nameof(Configs))]
    public void GreedyGenerationEqualsFullForwardArgmaxDecoding(TransformerConfig c)
    {
        var model = Model(c);
        int[][] prompts = [[3, 1, 4], [5], [2, 7, 1, 8]];
        const int maxNew = 6;
        var result = new Generator(model).Generate(prompts, new GenerationOptions(maxNew, Temperature: 0f));
        int v = c.VocabSize;
        for (int r = 0; r < prompts.Length; r++)
        {
            var seq = prompts[r].ToList();
            for (int i = 0; i < maxNew; i++)
            {
                var toks = seq.ToArray();
                model.Forward(toks, Enumerable.Repeat(1f, toks.Length).ToArray(), 1, toks.Length);
                var last = model.Logits.Slice((toks.Length - 1) * v, v);
                int arg = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(last);
                Assert.That(result.Tokens[r * maxNew + i], Is.EqualTo(arg), $"row {r} step {i}");
                double lse = Math.Log(last.ToArray().Sum(z => Math.Exp(z)));
                Assert.That(result.LogProbs[r * maxNew + i], Is.EqualTo(last[arg] - lse).Within(1e-4));
                seq.Add(arg);
            }
        }

        Assert.That(result.Lengths, Is.EqualTo(new[] { maxNew, maxNew, maxNew }));
        Assert.That(result.Mask.All(m => m == 1f), Is.True);
    }

    [Test]
    public void SeededSamplingIsReproducibleAndLogProbsAreTemperatureScaled()
    {
        var c = TransformerConfig.Llama(13, 12, 8, 2, 4, 2, 12);
        var model = Model(c);
        int[][] prompts = [[3, 1, 4], [5, 2]];
        var opts = new GenerationOptions(6, Temperature: 0.7f, TopK: 8, TopP: 0.95f, Seed: 42);
        var gen = new Generator(model);
        var a = gen.Generate(prompts, opts);
        var b = gen.Generate(prompts, opts);
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens));
        Assert.That(b.LogProbs, Is.EqualTo(a.LogProbs));
        var other = gen.Generate(prompts, opts with { Seed = 43, TopK = 0, TopP = 1f });
        Assert.That(other.Tokens, Is.Not.EqualTo(a.Tokens), "a different seed and no filter should sample differently");

        // Log-prob of each sampled token = log_softmax(logits / T) from a full forward.
        int v = c.VocabSize;
        for (int r = 0; r < 2; r++)
        {
            var seq = prompts[r].ToList();
            for (int i = 0; i < 6; i++)
            {
                var toks = seq.ToArray();
                model.Forward(toks, Enumerable.Repeat(1f, toks.Length).ToArray(), 1, toks.Length);
                var last = model.Logits.Slice((toks.Length - 1) * v, v).ToArray();
                int tok = a.Tokens[r * 6 + i];
                double lse = Math.Log(last.Sum(z => Math.Exp(z / 0.7)));
                Assert.That(a.LogProbs[r * 6 + i], Is.EqualTo(last[tok] / 0.7 - lse).Within(1e-4));
                // top-k 8 keeps the token among the 8 most likely.
                Assert.That(last.Count(z => z > last[tok]), Is.LessThan(8));
                seq.Add(tok);
            }
        }

        var top1 = gen.Generate(prompts, opts with { TopK = 1 });
        var greedy = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f));
        Assert.That(top1.Tokens, Is.EqualTo(greedy.Tokens), "top-k 1 is greedy");
    }

    [TestCase(0, 0.6f)]
    [TestCase(3, 0.9f)]
    [TestCase(5, 1f)]
    public void FilteredSamplingStaysInsideTheNucleusAndTopK(int topK, float topP)
    {
        var c = TransformerConfig.Gpt2(13, 12, 8, 2, 2);
        var model = Model(c);
        int v = c.VocabSize;
        var gen = new Generator(model);
        for (ulong seed = 0; seed < 4; seed++)
        {
            var res = gen.Generate([[3, 1], [4]], new GenerationOptions(5, Temperature: 1.3f, TopK: topK, TopP: topP, Seed: seed));
            int[][] prompts = [[3, 1], [4]];
            for (int r = 0; r < 2; r++)
            {
                var seq = prompts[r].ToList();
                for (int i = 0; i < 5; i++)
                {
                    var toks = seq.ToArray();
                    model.Forward(toks, Enumerable.Repeat(1f, toks.Length).ToArray(), 1, toks.Length);
                    var z = model.Logits.Slice((toks.Length - 1) * v, v).ToArray();
                    double lse = Math.Log(z.Sum(x => Math.Exp(x / 1.3)));
                    var p = z.Select(x => Math.Exp(x / 1.3 - lse)).ToArray();
                    int tok = res.Tokens[r * 5 + i];
                    int rank = Enumerable.Range(0, v).Count(j => p[j] > p[tok] || (p[j] == p[tok] && j < tok));
                    double massBefore = Enumerable.Range(0, v).Where(j => p[j] > p[tok] || (p[j] == p[tok] && j < tok)).Sum(j => p[j]);
                    if (topK > 0) Assert.That(rank, Is.LessThan(topK), "inside top-k");
                    Assert.That(massBefore, Is.LessThan(topP + 1e-6), "inside the nucleus");
                    seq.Add(tok);
                }
            }
        }
    }

    [Test]
    public void EosAndStopSequencesEndRows()
    {
        var c = TransformerConfig.Gpt2(13, 12, 8, 2, 2);
        var model = Model(c);
        int[][] prompts = [[3, 1, 4], [5]];
        var gen = new Generator(model);
        var free = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f));
        int eos = free.Tokens[2]; // row 0's third token
        var stopped = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f, EosTokenId: eos, PadTokenId: 12));
        int firstEos = Array.IndexOf(free.Tokens, eos, 0, 6);
        Assert.That(stopped.Lengths[0], Is.EqualTo(firstEos + 1));
        for (int i = 0; i < 6; i++)
        {
            bool live = i <= firstEos;
            Assert.That(stopped.Tokens[i], Is.EqualTo(live ? free.Tokens[i] : 12));
            Assert.That(stopped.Mask[i], Is.EqualTo(live ? 1f : 0f));
        }

        int[] stop = [free.Tokens[6 + 1], free.Tokens[6 + 2]];
        var bySeq = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f, StopSequences: [stop]));
        Assert.That(bySeq.Lengths[1], Is.LessThanOrEqualTo(3));
        var (seqTokens, seqMask, len) = bySeq.Concatenate();
        Assert.That(len, Is.EqualTo(3 + 6));
        Assert.That(seqTokens.AsSpan(9, 4).ToArray(), Is.EqualTo(new[] { 0, 0, 5, bySeq.Tokens[6] }));
        Assert.That(seqMask.AsSpan(9, 3).ToArray(), Is.EqualTo(new[] { 0f, 0f, 1f }));
        Assert.That(seqMask[9 + 3 + bySeq.Lengths[1] - 1], Is.EqualTo(1f));
        if (bySeq.Lengths[1] < 6) Assert.That(seqMask[9 + 3 + bySeq.Lengths[1]], Is.Zero);
        Assert.That(bySeq.Tokens.AsSpan(6, bySeq.Lengths[1]).ToArray(), Is.EqualTo(free.Tokens.AsSpan(6, bySeq.Lengths[1]).ToArray()));
        Assert.Throws<ArgumentException>(() => gen.Generate([[1, 2, 3, 4, 5, 6, 7]], new GenerationOptions(6)));
        Assert.Throws<ArgumentException>(() => gen.Generate([[]], new GenerationOptions(2)));
    }

    /// <summary>
    /// Checks <paramref name="stopped"/> is <paramref name="free"/> (the same greedy run without stops) cut after each row's
    /// first token in <paramref name="stops"/>: that token kept, PadTokenId <paramref name="pad"/> and mask 0 after it.
    /// </summary>
    internal static void AssertCutAtFirstStop(GenerationResult free, GenerationResult stopped, int[] stops, int pad)
    {
        int n = free.MaxNewTokens;
        for (int r = 0; r < free.Batch; r++)
        {
            int len = n;
            for (int i = 0; i < n; i++)
            {
                if (stops.Contains(free.Tokens[r * n + i]))
                {
                    len = i + 1;
                    break;
                }
            }

            Assert.That(stopped.Lengths[r], Is.EqualTo(len), $"row {r} length");
            for (int i = 0; i < n; i++)
            {
                bool live = i < len;
                Assert.That(stopped.Tokens[r * n + i], Is.EqualTo(live ? free.Tokens[r * n + i] : pad), $"row {r} token {i}");
                Assert.That(stopped.Mask[r * n + i], Is.EqualTo(live ? 1f : 0f), $"row {r} mask {i}");
                Assert.That(stopped.LogProbs[r * n + i], Is.EqualTo(live ? free.LogProbs[r * n + i] : 0f), $"row {r} log-prob {i}");
            }
        }
    }

    /// <summary>An id no row of <paramref name="free"/> generated (there is one: fewer tokens than the vocabulary).</summary>
    internal static int NeverGenerated(GenerationResult free, int vocab) => Enumerable.Range(0, vocab).First(t => Array.IndexOf(free.Tokens, t) < 0);

    [TestCaseSource(nameof(Configs))]
    public void AnyIdOfAnEosListEndsARow(TransformerConfig c)
    {
        var gen = new Generator(Model(c));
        int[][] prompts = [[3, 1, 4], [5]];
        var free = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f));
        // The list's first id is never generated; row 0 stops at its second, its third token (or earlier, where it repeats).
        int[] stops = [NeverGenerated(free, c.VocabSize), free.Tokens[2]];
        var stopped = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f, PadTokenId: 12, EosTokenIds: stops));
        Assert.That(stopped.Lengths[0], Is.LessThanOrEqualTo(3));
        AssertCutAtFirstStop(free, stopped, stops, pad: 12);

        // The tokenizer's EOS still ends rows next to the list.
        int[] both = [stops[1], free.Tokens[6 + 1]];
        var withEos = gen.Generate(prompts, new GenerationOptions(6, Temperature: 0f, EosTokenId: both[1], PadTokenId: 12, EosTokenIds: [stops[1]]));
        Assert.That(withEos.Lengths[1], Is.LessThanOrEqualTo(2));
        AssertCutAtFirstStop(free, withEos, both, pad: 12);
    }

    [Test]
    public void NoEosListOrAnEmptyOne_GivesTheSingleEosRunBitForBit()
    {
        var c = TransformerConfig.Llama(13, 12, 8, 2, 4, 2, 12);
        var gen = new Generator(Model(c));
        int[][] prompts = [[3, 1, 4], [5], [7, 7]];
        var single = new GenerationOptions(8, Temperature: 1.1f, TopK: 6, Seed: 9, EosTokenId: 4, PadTokenId: 12);
        var a = gen.Generate(prompts, single);
        var b = gen.Generate(prompts, single with { EosTokenIds = [] });
        var d = gen.Generate(prompts, single with { EosTokenIds = [4] });
        foreach (var other in new[] { b, d })
        {
            Assert.That(other.Tokens, Is.EqualTo(a.Tokens));
            Assert.That(other.Mask, Is.EqualTo(a.Mask));
            Assert.That(other.LogProbs, Is.EqualTo(a.LogProbs));
            Assert.That(other.Lengths, Is.EqualTo(a.Lengths));
        }
    }

    [Test]
    public void TextTokensLeaveOutAFinalListedIdButNotTheTokenizersEos()
    {
        // Row 0 ends with 7 (the tokenizer's EOS, which decoding hides itself), row 1 with 5 (listed), row 2 with 3 (hit the limit).
        var res = new GenerationResult(3, 3, [4, 7, 0, 4, 9, 5, 1, 2, 3], new float[9], new float[9], [2, 3, 3], 1, [1, 1, 1], [1, 1, 1]);
        var options = new GenerationOptions(3, EosTokenId: 7, EosTokenIds: [7, 5]);
        Assert.That(res.TextTokens(0, options).ToArray(), Is.EqualTo(new[] { 4, 7 }));
        Assert.That(res.TextTokens(1, options).ToArray(), Is.EqualTo(new[] { 4, 9 }));
        Assert.That(res.TextTokens(2, options).ToArray(), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(res.TextTokens(1, options with { EosTokenIds = null }).ToArray(), Is.EqualTo(new[] { 4, 9, 5 }));
    }

    private static double[] ToDouble(ReadOnlySpan<float> s)
    {
        var d = new double[s.Length];
        for (int i = 0; i < s.Length; i++) d[i] = s[i];
        return d;
    }

    [Test]
    public void TopKTopPOnRowsWithoutAFiniteLogitEndLikePlainSampling()
    {
        // NaN weights give NaN logits everywhere: the threshold search used to halve a NaN threshold forever.
        var model = new TransformerModel(TransformerConfig.Gpt2(13, 12, 8, 2, 2));
        Array.Fill(model.Parameters, float.NaN);
        var gen = new Generator(model);
        var run = Task.Run(() => gen.Generate([[1, 2]], new GenerationOptions(3, Temperature: 0.8f, TopK: 4, TopP: 0.9f, Seed: 1)));
        Assert.That(run.Wait(TimeSpan.FromSeconds(60)), Is.True, "top-k/top-p generation must end");
        var plain = gen.Generate([[1, 2]], new GenerationOptions(3, Temperature: 0.8f, Seed: 1));
        Assert.That(run.Result.Tokens, Is.EqualTo(plain.Tokens), "the same pick as plain sampling, from the same draws");
    }
}
