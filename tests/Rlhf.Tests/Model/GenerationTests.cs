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
