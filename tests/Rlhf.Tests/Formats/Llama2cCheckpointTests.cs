using System.Buffers.Binary;
using Rlhf.Formats;
using Rlhf.Tests.Support;
using static Rlhf.Tests.Formats.FormatTestFiles;

namespace Rlhf.Tests.Formats;

public class Llama2cCheckpointTests
{
    private sealed record RawModel(int[] Header, Dictionary<string, float[]> Blocks, byte[] Bytes);

    private static readonly string[] Order =
        ["emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "norm", "fcr", "fci", "wcls"];

    /// <summary>A llama2.c file in run.c's order: header, then each block filled with random values.</summary>
    private static RawModel MakeRaw(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seq, bool shared)
    {
        int kv = dim / heads * kvHeads;
        int hs = dim / heads;
        var sizes = new Dictionary<string, int>
        {
            ["emb"] = vocab * dim, ["rms_att"] = layers * dim, ["wq"] = layers * dim * dim, ["wk"] = layers * kv * dim,
            ["wv"] = layers * kv * dim, ["wo"] = layers * dim * dim, ["rms_ffn"] = layers * dim, ["w1"] = layers * hidden * dim,
            ["w2"] = layers * dim * hidden, ["w3"] = layers * hidden * dim, ["norm"] = dim, ["fcr"] = seq * hs / 2,
            ["fci"] = seq * hs / 2, ["wcls"] = shared ? 0 : vocab * dim,
        };
        int[] header = [dim, hidden, layers, heads, kvHeads, shared ? vocab : -vocab, seq];
        var blocks = new Dictionary<string, float[]>();
        var bytes = new List<byte>();
        foreach (int h in header)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, h);
            bytes.AddRange(b);
        }

        int seed = 10;
        foreach (string name in Order)
        {
            blocks[name] = Random(sizes[name], seed++);
            bytes.AddRange(F32Bytes(blocks[name]));
        }

        return new RawModel(header, blocks, bytes.ToArray());
    }

    /// <summary>HF's permute written as an index map: view (H, hs/2, 2, cols) → transpose(1, 2) → (H, 2, hs/2, cols).</summary>
    private static float[] HfPermuteReference(float[] w, int heads, int rows, int cols)
    {
        int half = rows / heads / 2;
        var o = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int p = 0; p < 2; p++)
                    for (int c = 0; c < cols; c++)
                        o[((h * 2 + p) * half + i) * cols + c] = w[((h * half + i) * 2 + p) * cols + c];
        return o;
    }

    private static float[] Layer(float[] block, int layer, int size) => block.AsSpan(layer * size, size).ToArray();

    [Test]
    public void PermuteToHf_MatchesTransformersConvertScript()
    {
        var f = Fixture.Load("formats_permute");
        var w = f["w"].AsFloats();
        var expected = f["w_hf"].AsFloats();
        int heads = (int)f["n_heads"].Scalar;
        int rows = f["w"].Shape[0], cols = f["w"].Shape[1];
        var hf = new float[w.Length];
        Llama2cCheckpoint.PermuteToHf(w, hf, heads, rows, cols);
        Assert.That(hf, Is.EqualTo(expected));
        var back = new float[w.Length];
        Llama2cCheckpoint.PermuteFromHf(hf, back, heads, rows, cols);
        Assert.That(back, Is.EqualTo(w));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Read_MapsEveryBlockToHfNames(bool shared)
    {
        using var dir = new TempDir();
        const int dim = 8, hidden = 12, L = 2, H = 2, KV = 1, V = 10, S = 4;
        var raw = MakeRaw(dim, hidden, L, H, KV, V, S, shared);
        string path = dir.File("m.bin");
        File.WriteAllBytes(path, raw.Bytes);

        var m = Llama2cCheckpoint.Read(path);
        Assert.That(m.Header, Is.EqualTo(new Llama2cHeader(dim, hidden, L, H, KV, V, S, shared)));
        Assert.That(m.Config, Is.EqualTo(new HfModelConfig(HfModelType.Llama, dim, hidden, L, H, KV, S, V, 1e-5f, 10000f, shared, 1, 2)));
        var t = m.Tensors;
        Assert.That(t.Count, Is.EqualTo(2 + 9 * L + (shared ? 0 : 1)));
        Assert.That(t.Get("model.embed_tokens.weight", [V, dim]), Is.EqualTo(raw.Blocks["emb"]));
        Assert.That(t.Get("model.norm.weight", [dim]), Is.EqualTo(raw.Blocks["norm"]));
        Assert.That(t.Contains("lm_head.weight"), Is.EqualTo(!shared));
        if (!shared)
        {
            Assert.That(t.Get("lm_head.weight", [V, dim]), Is.EqualTo(raw.Blocks["wcls"]));
        }

        int kv = dim / H * KV;
        for (int l = 0; l < L; l++)
        {
            string p = $"model.layers.{l}.";
            Assert.That(t.Get(p + "input_layernorm.weight", [dim]), Is.EqualTo(Layer(raw.Blocks["rms_att"], l, dim)));
            Assert.That(t.Get(p + "self_attn.q_proj.weight", [dim, dim]), Is.EqualTo(HfPermuteReference(Layer(raw.Blocks["wq"], l, dim * dim), H, dim, dim)));
            Assert.That(t.Get(p + "self_attn.k_proj.weight", [kv, dim]), Is.EqualTo(HfPermuteReference(Layer(raw.Blocks["wk"], l, kv * dim), KV, kv, dim)));
            Assert.That(t.Get(p + "self_attn.v_proj.weight", [kv, dim]), Is.EqualTo(Layer(raw.Blocks["wv"], l, kv * dim)));
            Assert.That(t.Get(p + "self_attn.o_proj.weight", [dim, dim]), Is.EqualTo(Layer(raw.Blocks["wo"], l, dim * dim)));
            Assert.That(t.Get(p + "post_attention_layernorm.weight", [dim]), Is.EqualTo(Layer(raw.Blocks["rms_ffn"], l, dim)));
            Assert.That(t.Get(p + "mlp.gate_proj.weight", [hidden, dim]), Is.EqualTo(Layer(raw.Blocks["w1"], l, hidden * dim)));
            Assert.That(t.Get(p + "mlp.down_proj.weight", [dim, hidden]), Is.EqualTo(Layer(raw.Blocks["w2"], l, dim * hidden)));
            Assert.That(t.Get(p + "mlp.up_proj.weight", [hidden, dim]), Is.EqualTo(Layer(raw.Blocks["w3"], l, hidden * dim)));
        }
    }

    /// <summary>
    /// The point of the permutation: llama2.c's RoPE on interleaved pairs with the original weights gives the same
    /// attention scores q·k as HF's rotate_half RoPE with the converted weights.
    /// </summary>
    [Test]
    public void ConvertedWeights_WithRotateHalf_GiveLlama2cAttentionScores()
    {
        using var dir = new TempDir();
        const int dim = 16, H = 4, KV = 2, L = 1;
        int hs = dim / H, kv = hs * KV;
        var raw = MakeRaw(dim, 8, L, H, KV, 5, 8, true);
        string path = dir.File("m.bin");
        File.WriteAllBytes(path, raw.Bytes);
        var t = Llama2cCheckpoint.Read(path).Tensors;
        var wqHf = t.Get("model.layers.0.self_attn.q_proj.weight", [dim, dim]);
        var wkHf = t.Get("model.layers.0.self_attn.k_proj.weight", [kv, dim]);
        var x = Random(dim, 99);
        var y = Random(dim, 98);

        for (int posQ = 0; posQ < 5; posQ += 2)
        {
            for (int posK = 0; posK <= posQ; posK++)
            {
                var q1 = Llama2cRope(MatVec(raw.Blocks["wq"], x, dim, dim), hs, posQ);
                var k1 = Llama2cRope(MatVec(raw.Blocks["wk"], y, kv, dim), hs, posK);
                var q2 = RotateHalfRope(MatVec(wqHf, x, dim, dim), hs, posQ);
                var k2 = RotateHalfRope(MatVec(wkHf, y, kv, dim), hs, posK);
                for (int h = 0; h < H; h++)
                {
                    int kvh = h / (H / KV);
                    double s1 = 0, s2 = 0;
                    for (int j = 0; j < hs; j++)
                    {
                        s1 += q1[h * hs + j] * k1[kvh * hs + j];
                        s2 += q2[h * hs + j] * k2[kvh * hs + j];
                    }

                    Assert.That(s2, Is.EqualTo(s1).Within(1e-5), $"head {h}, positions {posQ}/{posK}");
                }
            }
        }
    }

    private static float[] MatVec(float[] w, float[] x, int rows, int cols)
    {
        var o = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < cols; c++)
            {
                s += (double)w[r * cols + c] * x[c];
            }

            o[r] = (float)s;
        }

        return o;
    }

    // run.c: for i in 0..dim step 2: freq = 1 / 10000^((i % head_size) / head_size), rotate (v[i], v[i+1]).
    private static double[] Llama2cRope(float[] v, int hs, int pos)
    {
        var o = new double[v.Length];
        for (int i = 0; i < v.Length; i += 2)
        {
            double freq = 1.0 / Math.Pow(10000.0, (double)(i % hs) / hs);
            double a = pos * freq;
            o[i] = v[i] * Math.Cos(a) - v[i + 1] * Math.Sin(a);
            o[i + 1] = v[i] * Math.Sin(a) + v[i + 1] * Math.Cos(a);
        }

        return o;
    }

    // HF: inv_freq[j] = 1 / 10000^(2j/hs); out = v·cos + rotate_half(v)·sin with rotate_half(v) = [-v2, v1].
    private static double[] RotateHalfRope(float[] v, int hs, int pos)
    {
        var o = new double[v.Length];
        int half = hs / 2;
        for (int h = 0; h < v.Length / hs; h++)
        {
            for (int j = 0; j < half; j++)
            {
                double a = pos / Math.Pow(10000.0, 2.0 * j / hs);
                double v1 = v[h * hs + j], v2 = v[h * hs + half + j];
                o[h * hs + j] = v1 * Math.Cos(a) - v2 * Math.Sin(a);
                o[h * hs + half + j] = v2 * Math.Cos(a) + v1 * Math.Sin(a);
            }
        }

        return o;
    }

    [TestCase(true)]
    [TestCase(false)]
    public void WriteThenRead_RoundTripsAndMatchesRunCLayout(bool shared)
    {
        using var dir = new TempDir();
        const int dim = 8, hidden = 12, L = 2, H = 2, KV = 2, V = 7, S = 6;
        var raw = MakeRaw(dim, hidden, L, H, KV, V, S, shared);
        string path = dir.File("m.bin");
        File.WriteAllBytes(path, raw.Bytes);
        var m = Llama2cCheckpoint.Read(path);
        string outPath = dir.File("out.bin");
        Llama2cCheckpoint.Write(outPath, m.Config, m.Tensors);

        byte[] written = File.ReadAllBytes(outPath);
        Assert.That(written.Length, Is.EqualTo(raw.Bytes.Length));
        // Identical bytes everywhere except the freq_cis tables, which the writer computes (run.c never reads them).
        int freqStart = raw.Bytes.Length - 4 * (raw.Blocks["fcr"].Length + raw.Blocks["fci"].Length + raw.Blocks["wcls"].Length);
        int freqEnd = freqStart + 4 * (raw.Blocks["fcr"].Length + raw.Blocks["fci"].Length);
        Assert.That(written[..freqStart], Is.EqualTo(raw.Bytes[..freqStart]));
        Assert.That(written[freqEnd..], Is.EqualTo(raw.Bytes[freqEnd..]));
        int hs = dim / H, half = hs / 2;
        for (int t = 0; t < S; t++)
        {
            for (int i = 0; i < half; i++)
            {
                double a = t / Math.Pow(10000.0, 2.0 * i / hs);
                float re = BinaryPrimitives.ReadSingleLittleEndian(written.AsSpan(freqStart + 4 * (t * half + i)));
                float im = BinaryPrimitives.ReadSingleLittleEndian(written.AsSpan(freqStart + 4 * (S * half + t * half + i)));
                Assert.That(re, Is.EqualTo(Math.Cos(a)).Within(1e-6));
                Assert.That(im, Is.EqualTo(Math.Sin(a)).Within(1e-6));
            }
        }
    }

    [TestCase(28 + 4 * 10, "token_embedding_table (model.embed_tokens.weight)")]
    [TestCase(28 + 4 * (80 + 16 + 128 + 10), "wk (model.layers.*.self_attn.k_proj.weight)")]
    [TestCase(-4, "wcls (lm_head.weight)")]
    public void Read_TruncatedFile_NamesFileAndTensor(int cut, string tensor)
    {
        using var dir = new TempDir();
        var raw = MakeRaw(8, 12, 2, 2, 1, 10, 4, shared: false);
        string path = dir.File("cut.bin");
        int length = cut < 0 ? raw.Bytes.Length + cut : cut;
        File.WriteAllBytes(path, raw.Bytes[..length]);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path))!;
        Assert.That(e.Message, Does.StartWith($"file {path}: truncated: tensor {tensor} needs bytes"));
        Assert.That(e.Message, Does.Contain($"but the file has {length}"));
    }

    [Test]
    public void Read_HeaderShorterThan28Bytes()
    {
        using var dir = new TempDir();
        string path = dir.File("h.bin");
        File.WriteAllBytes(path, new byte[20]);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path))!;
        Assert.That(e.Message, Is.EqualTo($"file {path}: truncated: 20 bytes, the llama2.c header needs 28"));
    }

    [Test]
    public void Read_TrailingBytes_AreAnError()
    {
        using var dir = new TempDir();
        var raw = MakeRaw(8, 12, 1, 2, 2, 5, 4, shared: true);
        string path = dir.File("long.bin");
        File.WriteAllBytes(path, [.. raw.Bytes, 0, 0, 0, 0]);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path))!;
        Assert.That(e.Message, Does.StartWith($"file {path}: 4 bytes after the last tensor"));
    }

    [Test]
    public void Read_BadHeader_NamesField()
    {
        using var dir = new TempDir();
        var raw = MakeRaw(8, 12, 1, 2, 2, 5, 4, shared: true);
        BinaryPrimitives.WriteInt32LittleEndian(raw.Bytes.AsSpan(12), 3); // n_heads = 3 does not split dim 8
        string path = dir.File("bad.bin");
        File.WriteAllBytes(path, raw.Bytes);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path))!;
        Assert.That(e.Message, Is.EqualTo($"file {path}: header field n_heads = 3 does not split dim 8 into heads of even size"));
    }

    [TestCase(int.MinValue)] // negative means unshared, but int.MinValue has no magnitude: it was reported as 0
    [TestCase(0)]
    public void Read_ImpossibleVocabSize_ReportsTheRawHeaderValue(int vocabSize)
    {
        using var dir = new TempDir();
        var raw = MakeRaw(8, 12, 1, 2, 2, 5, 4, shared: true);
        BinaryPrimitives.WriteInt32LittleEndian(raw.Bytes.AsSpan(20), vocabSize);
        string path = dir.File("vocab.bin");
        File.WriteAllBytes(path, raw.Bytes);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path))!;
        Assert.That(e.Message, Does.StartWith($"file {path}: header field vocab_size = {vocabSize},"));
    }

    [Test]
    public void Read_HugeHeader_IsAFormatErrorNotAnOverflow()
    {
        using var dir = new TempDir();
        var raw = MakeRaw(8, 12, 1, 2, 2, 5, 4, shared: true);
        foreach (int field in new[] { 0, 1, 2 })
        {
            BinaryPrimitives.WriteInt32LittleEndian(raw.Bytes.AsSpan(4 * field), 1 << 30);
        }

        string path = dir.File("huge.bin");
        File.WriteAllBytes(path, raw.Bytes);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Read(path))!;
        Assert.That(e.Message, Does.StartWith($"file {path}: "));
    }

    [Test]
    public void Write_WrongShape_NamesTensor()
    {
        using var dir = new TempDir();
        var raw = MakeRaw(8, 12, 1, 2, 2, 5, 4, shared: true);
        string path = dir.File("m.bin");
        File.WriteAllBytes(path, raw.Bytes);
        var m = Llama2cCheckpoint.Read(path);
        var bad = new NamedTensors("edited");
        foreach (var t in m.Tensors)
        {
            bool target = t.Name == "model.layers.0.mlp.up_proj.weight";
            bad.Add(t.Name, target ? [8, 12] : t.Shape, t.Data);
        }

        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Write(dir.File("o.bin"), m.Config, bad))!;
        Assert.That(e.Message, Is.EqualTo("file edited: tensor model.layers.0.mlp.up_proj.weight has shape [8,12], expected [12,8]"));
        Assert.That(File.Exists(dir.File("o.bin")), Is.False);
    }

    [Test]
    [Category("Acceptance")]
    public void Stories260K_ReadsAndConvertsLikeHfScript()
    {
        string path = SharedStories("stories260K.bin");
        var f = Fixture.Load("formats_stories260k");
        var m = Llama2cCheckpoint.Read(path);
        int[] h = f["header"].AsInts();
        Assert.That(m.Header, Is.EqualTo(new Llama2cHeader(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7] == 1)));
        Assert.That(m.Header, Is.EqualTo(new Llama2cHeader(64, 172, 5, 8, 4, 512, 512, true)));

        var names = File.ReadAllLines(Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "formats_stories260k_names.txt"));
        var sorted = m.Tensors.Names.ToArray();
        Array.Sort(sorted, string.CompareOrdinal);
        Assert.That(sorted, Is.EqualTo(names));
        var sums = f["sums"].Data;
        for (int i = 0; i < names.Length; i++)
        {
            var data = m.Tensors[names[i]].Data;
            double s = 0;
            for (int j = 0; j < data.Length; j++)
            {
                s += data[j] * (double)(j + 1);
            }

            Assert.That(s, Is.EqualTo(sums[i]).Within(1e-9 * Math.Max(1, Math.Abs(sums[i]))), names[i]);
        }

        Assert.That(m.Tensors["model.layers.1.self_attn.q_proj.weight"].Data[..(8 * 64)], Is.EqualTo(f["q1_rows0_8"].AsFloats()));
        Assert.That(m.Tensors.Get("model.layers.4.self_attn.k_proj.weight", [32, 64]), Is.EqualTo(f["k4"].AsFloats()));

        using var dir = new TempDir();
        string outPath = dir.File("stories.bin");
        Llama2cCheckpoint.Write(outPath, m.Config, m.Tensors);
        byte[] original = File.ReadAllBytes(path);
        byte[] written = File.ReadAllBytes(outPath);
        int freqFloats = 512 * 8 / 2 * 2;
        int freqStart = original.Length - 4 * freqFloats;
        Assert.That(written.Length, Is.EqualTo(original.Length));
        Assert.That(written[..freqStart], Is.EqualTo(original[..freqStart]));
        for (int i = 0; i < freqFloats; i++)
        {
            float a = BinaryPrimitives.ReadSingleLittleEndian(original.AsSpan(freqStart + 4 * i));
            float b = BinaryPrimitives.ReadSingleLittleEndian(written.AsSpan(freqStart + 4 * i));
            // llama2.c computed these in fp32 in PyTorch; angles up to 511 rad make a few ulps of the angle visible.
            Assert.That(b, Is.EqualTo(a).Within(2e-4), $"freq_cis float {i}");
        }
    }
}
