using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Model;

/// <summary>Value, reward and classification heads: values, pooling, and gradients through the model by finite differences.</summary>
public class HeadTests
{
    private static readonly int[] Tokens = [1, 4, 2, 7, 3, 0, 0, 5, 9, 2, 6, 8, 1, 0, 0];
    private static readonly float[] Mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0];

    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(TinyGpt2(), "value").SetName("Gpt2_ValueHead");
        yield return new TestCaseData(TinyLlama(), "reward").SetName("Llama_RewardHead");
        yield return new TestCaseData(TinyLlama(), "classify").SetName("Llama_ClassificationHead");
        yield return new TestCaseData(TinyGpt2(), "classify").SetName("Gpt2_ClassificationHead");
    }

    [TestCaseSource(nameof(Cases))]
    public void HeadGradientsMatchFiniteDifferences(TransformerConfig c, string kind)
    {
        const int b = 3, t = 5;
        var model = new TransformerModel(c);
        model.InitializeRandom(21, std: 0.3f);
        var head = kind switch
        {
            "value" => ScoreHead.Value(c.ModelDim),
            "reward" => ScoreHead.Reward(c.ModelDim),
            _ => ScoreHead.Classification(c.ModelDim, 3),
        };
        head.InitializeRandom(4, std: 0.5f);
        int outLen = (head.Pooling == HeadPooling.PerToken ? b * t : b) * head.Outputs;
        var r = RandomFloats(outLen, 8);
        if (head.Pooling == HeadPooling.PerToken)
            for (int i = 0; i < b * t; i++) r[i] *= Mask[i]; // padded tokens get no value loss
        var scores = new float[outLen];
        double Loss()
        {
            model.Forward(Tokens, Mask, b, t, computeLogits: false);
            head.Forward(model.FinalHidden, Mask, b, t, scores);
            return FiniteDifference.Dot(scores, r);
        }

        Loss();
        var dHidden = new float[b * t * c.ModelDim];
        model.ZeroGradients();
        Array.Clear(head.Gradients);
        head.Backward(r, model.FinalHidden, Mask, b, t, dHidden);
        model.Backward(default, dHidden);
        FiniteDifference.Check(head.Parameters, head.Gradients.ToArray(), Loss, "head", h: 1e-2, tol: 5e-3);
        var pick = new int[30];
        var rng = new Xoshiro256(3);
        for (int i = 0; i < pick.Length; i++) pick[i] = (int)(rng.NextUInt64() % (ulong)model.Parameters.Length);
        FiniteDifference.Check(model.Parameters, model.Gradients.ToArray(), Loss, "model", h: 1e-2, tol: 1e-2, indices: pick);
    }

    [Test]
    public void LastTokenPoolingReadsTheLastRealToken()
    {
        var c = TinyGpt2();
        var model = new TransformerModel(c);
        model.InitializeRandom(2, std: 0.3f);
        var head = ScoreHead.Reward(c.ModelDim);
        head.InitializeRandom(1, std: 1f);
        head.Parameters[^1] = 0.25f;
        model.Forward(Tokens, Mask, 3, 5, computeLogits: false);
        var scores = new float[3];
        head.Forward(model.FinalHidden, Mask, 3, 5, scores);
        int[] last = [4, 4, 2];
        var w = head.Parameters.AsSpan(0, c.ModelDim);
        for (int row = 0; row < 3; row++)
        {
            double expected = FiniteDifference.Dot(model.FinalHidden.Slice((row * 5 + last[row]) * c.ModelDim, c.ModelDim), w) + 0.25;
            Assert.That(scores[row], Is.EqualTo(expected).Within(1e-5));
        }

        Assert.Throws<ArgumentException>(() => head.Forward(model.FinalHidden, new float[15], 3, 5, scores));
    }
}
