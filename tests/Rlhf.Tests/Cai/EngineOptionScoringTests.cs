using Rlhf.Cai;
using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cai;

/// <summary>
/// Option scoring through the engine on a model whose logits are known: every layer's weights are zero (so each
/// layer adds nothing), token embeddings are one-hot, so the logits after token t are lm_head[:, t]·r with
/// r = 1/√(1/d + eps) from the final RMSNorm. The expected log-probabilities follow by hand.
/// </summary>
public class EngineOptionScoringTests
{
    private const int D = 64;
    private const float Eps = 1e-5f;

    private sealed class CharTokenizer : ITokenizer
    {
        public const string Alphabet = "#abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ().:?\n";

        public int VocabSize => Alphabet.Length;

        public int? BosId => 0;

        public int? EosId => null;

        public int[] Encode(string text) => [.. text.Select(ch => Math.Max(1, Alphabet.IndexOf(ch)))];

        public string Decode(ReadOnlySpan<int> ids)
        {
            var sb = new System.Text.StringBuilder();
            foreach (int id in ids) if (id > 0) sb.Append(Alphabet[id]);
            return sb.ToString();
        }

        public string TokenToString(int id) => Alphabet[id].ToString();
    }

    private static (TransformerModel Model, float[,] Logits) KnownModel()
    {
        var tok = new CharTokenizer();
        int v = tok.VocabSize;
        Assert.That(v, Is.LessThanOrEqualTo(D));
        var model = new TransformerModel(TransformerConfig.Llama(v, 2048, D, 1, 2, 2, 8, Eps));
        Array.Clear(model.Parameters);
        var emb = model.Tensor("model.embed_tokens.weight");
        for (int t = 0; t < v; t++) emb[t * D + t] = 1f;
        model.Tensor("model.norm.weight").Fill(1f);
        var head = model.Tensor("lm_head.weight");
        var rng = new Xoshiro256(11);
        float r = 1f / MathF.Sqrt(1f / D + Eps);
        var logits = new float[v, v];
        for (int next = 0; next < v; next++)
        {
            for (int t = 0; t < v; t++)
            {
                head[next * D + t] = (float)(2 * rng.NextGaussian());
                logits[t, next] = head[next * D + t] * r;
            }
        }

        return (model, logits);
    }

    private static double Reference(float[,] logits, int[] prompt, int[] option)
    {
        int v = logits.GetLength(0);
        double sum = 0;
        int prev = prompt[^1];
        foreach (int next in option)
        {
            double lse = Math.Log(Enumerable.Range(0, v).Sum(j => Math.Exp(logits[prev, j])));
            sum += logits[prev, next] - lse;
            prev = next;
        }

        return sum;
    }

    [Test]
    public void OptionLogProbs_AreTheTeacherForcedSumsOfKnownLogits()
    {
        var (model, logits) = KnownModel();
        var tok = new CharTokenizer();
        var lm = new EngineLanguageModel(model, tok);
        string prompt = "Which is better: The answer is";
        string[] options = [" (A)", " (B)", " (AB) longer"];
        var got = lm.OptionLogProbs(prompt, options);
        int[] p = [0, .. tok.Encode(prompt)];
        for (int k = 0; k < options.Length; k++)
        {
            Assert.That(got[k], Is.EqualTo(Reference(logits, p, tok.Encode(options[k]))).Within(1e-4), options[k]);
        }
    }

    [Test]
    public void Labeler_OnAModelWithOnlyAPositionBias_GivesExactlyOneHalf()
    {
        var (model, logits) = KnownModel();
        var tok = new CharTokenizer();
        var c = Constitution.Parse("""
            { "principles": [ { "critique_request": "c", "revision_request": "r" } ],
              "comparison_principles": [ { "name": "x", "question": "Which is kinder?" }, { "name": "y", "question": "Which is safer?" } ] }
            """, "test");
        var labeler = new PreferenceLabeler(new EngineLanguageModel(model, tok), c);
        // The model only looks at the previous character, the end of the answer prefix, which is the same in both
        // orders: P(A) is the same whichever reply is shown first, and averaging the two orders gives exactly 0.5.
        string prefixEnd = c.Templates.AnswerPrefix;
        int[] p = [0, .. tok.Encode(prefixEnd)];
        double pa = OptionPreference.TwoWay(Reference(logits, p, tok.Encode(" (A)")), Reference(logits, p, tok.Encode(" (B)")));
        Assert.That(pa, Is.Not.EqualTo(0.5).Within(0.01), "the known logits should prefer one label");
        var j = labeler.Judge("please help", "Sure here it is", "No thanks", c.ComparisonPrinciples);
        foreach (var vote in j.Votes)
        {
            Assert.That(vote.FirstAsA, Is.EqualTo(pa).Within(1e-5));
            Assert.That(vote.SecondAsA, Is.EqualTo(pa).Within(1e-5));
        }

        Assert.That(j.FirstBetter, Is.EqualTo(0.5).Within(1e-7));
    }
}
