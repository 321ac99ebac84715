using Rlhf.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Formats;

/// <summary>
/// End-to-end proof of the llama2.c → Hugging Face conversion: a scalar Llama forward written the Hugging Face way
/// (rotate_half RoPE, converted tensor names) run greedily from BOS reproduces llama2.c's greedy text for stories260K.
/// The forward here is a test-only reference, not the engine's model.
/// </summary>
[Category("Acceptance")]
public class Stories260KGreedyTests
{
    [Test]
    public void ConvertedModel_WithRotateHalf_ReproducesLlama2cGreedyText()
    {
        var model = Llama2cCheckpoint.Read(FormatTestFiles.SharedStories("stories260K.bin"));
        var tok = Llama2cTokenizer.Load(FormatTestFiles.SharedStories("tok512.bin"), model.Config.VocabSize);
        string expected = File.ReadAllText(FormatTestFiles.SharedStories("greedy_t0_256steps.expected.txt"));

        var ids = Greedy(model.Config, model.Tensors, steps: 256);
        // run.c (steps = 256: 256 forward passes from BOS) prints the pieces after BOS, then a newline.
        Assert.That(tok.Decode(ids.ToArray()) + "\n", Is.EqualTo(expected));
    }

    private static List<int> Greedy(HfModelConfig c, NamedTensors t, int steps)
    {
        int d = c.HiddenSize, hs = c.HeadDim, kvDim = c.KvDim, f = c.IntermediateSize, V = c.VocabSize;
        var emb = t.Get("model.embed_tokens.weight", [V, d]);
        var kCache = new float[c.NumLayers, steps, kvDim];
        var vCache = new float[c.NumLayers, steps, kvDim];
        var x = new float[d];
        var generated = new List<int>();
        int token = Llama2cTokenizer.Bos;
        for (int pos = 0; pos < steps; pos++)
        {
            Array.Copy(emb, token * d, x, 0, d);
            for (int l = 0; l < c.NumLayers; l++)
            {
                string p = $"model.layers.{l}.";
                var h = RmsNorm(x, t.Get(p + "input_layernorm.weight", [d]), c.NormEps);
                var q = MatVec(t.Get(p + "self_attn.q_proj.weight", [d, d]), h, d, d);
                var k = MatVec(t.Get(p + "self_attn.k_proj.weight", [kvDim, d]), h, kvDim, d);
                var v = MatVec(t.Get(p + "self_attn.v_proj.weight", [kvDim, d]), h, kvDim, d);
                RotateHalf(q, hs, pos, c.RopeTheta);
                RotateHalf(k, hs, pos, c.RopeTheta);
                for (int i = 0; i < kvDim; i++)
                {
                    kCache[l, pos, i] = k[i];
                    vCache[l, pos, i] = v[i];
                }

                var att = new float[d];
                for (int head = 0; head < c.NumHeads; head++)
                {
                    int kvh = head / (c.NumHeads / c.NumKvHeads);
                    var scores = new float[pos + 1];
                    float max = float.NegativeInfinity;
                    for (int s = 0; s <= pos; s++)
                    {
                        float dot = 0;
                        for (int i = 0; i < hs; i++)
                        {
                            dot += q[head * hs + i] * kCache[l, s, kvh * hs + i];
                        }

                        scores[s] = dot / MathF.Sqrt(hs);
                        max = MathF.Max(max, scores[s]);
                    }

                    float sum = 0;
                    for (int s = 0; s <= pos; s++)
                    {
                        scores[s] = MathF.Exp(scores[s] - max);
                        sum += scores[s];
                    }

                    for (int s = 0; s <= pos; s++)
                    {
                        for (int i = 0; i < hs; i++)
                        {
                            att[head * hs + i] += scores[s] / sum * vCache[l, s, kvh * hs + i];
                        }
                    }
                }

                Add(x, MatVec(t.Get(p + "self_attn.o_proj.weight", [d, d]), att, d, d));
                h = RmsNorm(x, t.Get(p + "post_attention_layernorm.weight", [d]), c.NormEps);
                var gate = MatVec(t.Get(p + "mlp.gate_proj.weight", [f, d]), h, f, d);
                var up = MatVec(t.Get(p + "mlp.up_proj.weight", [f, d]), h, f, d);
                for (int i = 0; i < f; i++)
                {
                    gate[i] = gate[i] / (1f + MathF.Exp(-gate[i])) * up[i];
                }

                Add(x, MatVec(t.Get(p + "mlp.down_proj.weight", [d, f]), gate, d, f));
            }

            var logits = MatVec(emb, RmsNorm(x, t.Get("model.norm.weight", [d]), c.NormEps), V, d);
            int next = 0;
            for (int i = 1; i < V; i++)
            {
                if (logits[i] > logits[next])
                {
                    next = i;
                }
            }

            if (next == Llama2cTokenizer.Bos)
            {
                break; // run.c stops on BOS
            }

            generated.Add(next);
            token = next;
        }

        return generated;
    }

    private static float[] RmsNorm(float[] x, float[] w, float eps)
    {
        float ss = 0;
        foreach (float v in x)
        {
            ss += v * v;
        }

        float scale = 1f / MathF.Sqrt(ss / x.Length + eps);
        var o = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            o[i] = w[i] * (scale * x[i]);
        }

        return o;
    }

    private static float[] MatVec(float[] w, float[] x, int rows, int cols)
    {
        var o = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            float s = 0;
            for (int i = 0; i < cols; i++)
            {
                s += w[r * cols + i] * x[i];
            }

            o[r] = s;
        }

        return o;
    }

    // Hugging Face's apply_rotary_pos_emb: v·cos + rotate_half(v)·sin, pairs (j, j + hs/2) within each head.
    private static void RotateHalf(float[] v, int hs, int pos, float theta)
    {
        int half = hs / 2;
        for (int h = 0; h < v.Length / hs; h++)
        {
            for (int j = 0; j < half; j++)
            {
                float angle = pos / MathF.Pow(theta, 2f * j / hs);
                float cos = MathF.Cos(angle), sin = MathF.Sin(angle);
                float a = v[h * hs + j], b = v[h * hs + half + j];
                v[h * hs + j] = a * cos - b * sin;
                v[h * hs + half + j] = b * cos + a * sin;
            }
        }
    }

    private static void Add(float[] x, float[] y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] += y[i];
        }
    }
}
