using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tests.Model;
using Rlhf.Tests.Support;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

/// <summary>One PPO iteration against tests/reference/ppo.py (TRL's formulas in PyTorch), to 1e-4 relative.</summary>
public class PpoReferenceTests
{
    private const double Tol = 1e-4;

    [Test]
    public void IterationMatchesPyTorchTrlFormulas()
    {
        var f = Fixture.Load("ppo_step");
        var cfg = TransformerConfig.Gpt2(vocabSize: 24, contextLength: 10, modelDim: 8, layerCount: 2, headCount: 2);
        var policy = new TransformerModel(cfg);
        var reference = new TransformerModel(cfg);
        foreach (var t in policy.Layout.Tensors)
        {
            policy.LoadTensor(t.Name, f["param." + t.Name].AsFloats());
            reference.LoadTensor(t.Name, f["ref." + t.Name].AsFloats());
        }

        var o = new PpoOptions
        {
            BatchSize = 3, MiniBatchSize = 3, PpoEpochs = 2, MaxNewTokens = 5, LoraRank = 0, InitialKlCoef = 0.2f, Gamma = 0.9f, Lambda = 0.95f,
            ClipRange = 0.2f, ValueClipRange = 0.2f, ValueCoef = 0.1f, EntropyCoef = 0.01f, LearningRate = 5e-2f, MaxGradNorm = 1f,
        };
        var trainer = new PpoTrainer(policy, new CountingTokenizer(24), new PpoTestSupport.LowercaseReward(), ["x"], o, reference);
        trainer.ValueHead.LoadTensor("v_head.summary.weight", f["v_head.weight"].AsFloats());
        trainer.ValueHead.LoadTensor("v_head.summary.bias", f["v_head.bias"].AsFloats());
        int p = (int)f["P"].Scalar, r = (int)f["R"].Scalar, b = 3, s = p + r;
        var rollout = new PpoRollout(b, p, r);
        f["tokens"].AsInts().CopyTo(rollout.Tokens, 0);
        f["mask"].AsFloats().CopyTo(rollout.Mask, 0);
        f["resp_mask"].AsFloats().CopyTo(rollout.ResponseMask, 0);
        f["scores"].AsFloats().CopyTo(rollout.Scores, 0);
        for (int i = 0; i < b; i++) rollout.Tokens.AsSpan(i * s + p, r).CopyTo(rollout.ResponseTokens.AsSpan(i * r, r));

        trainer.ComputeLogProbsAndValues(rollout);
        ModelTestUtil.AssertClose(rollout.OldLogProbs, f["old_logp"].Data, Tol, "old log-probs");
        ModelTestUtil.AssertClose(rollout.ReferenceLogProbs, f["ref_logp"].Data, Tol, "reference log-probs");
        ModelTestUtil.AssertClose(rollout.Values, f["old_values"].Data, Tol, "values");
        double meanKl = trainer.ComputeAdvantages(rollout);
        Assert.That(meanKl, Is.EqualTo(f["mean_kl"].Scalar).Within(Tol * Math.Abs(f["mean_kl"].Scalar) + 1e-7));
        ModelTestUtil.AssertClose(rollout.Kl, f["kl"].Data, Tol, "kl");
        ModelTestUtil.AssertClose(rollout.Rewards, f["rewards"].Data, Tol, "rewards");
        ModelTestUtil.AssertClose(rollout.Advantages, f["advantages"].Data, Tol, "advantages");
        ModelTestUtil.AssertClose(rollout.Returns, f["returns"].Data, Tol, "returns");

        for (int step = 0; step < 2; step++)
        {
            var m = trainer.TrainMinibatch(rollout, [0, 1, 2]);
            Close(m.PolicyLoss, f[$"step{step}.pg_loss"].Scalar, $"step {step} policy loss");
            Close(m.ValueLoss, f[$"step{step}.vf_loss"].Scalar, $"step {step} value loss");
            Close(m.Entropy, f[$"step{step}.entropy"].Scalar, $"step {step} entropy");
            Close(trainer.TotalLoss(m), f[$"step{step}.loss"].Scalar, $"step {step} loss");
            Close(m.GradNorm, f[$"step{step}.grad_norm"].Scalar, $"step {step} grad norm");
            Close(m.ApproxKl, f[$"step{step}.approx_kl"].Scalar, $"step {step} approx KL", 1e-9);
            Assert.That(m.ValueClipFraction, Is.EqualTo(f[$"step{step}.vf_clipfrac"].Scalar).Within(1e-6), $"step {step} value clip fraction");
            Assert.That(m.ClipFraction, Is.EqualTo(f[$"step{step}.clipfrac"].Scalar).Within(1e-6), $"step {step} clip fraction");
            if (step == 1) Assert.That(m.ValueClipFraction, Is.GreaterThan(0), "the second step exercises value clipping");
        }

        foreach (var t in policy.Layout.Tensors)
        {
            var got = policy.Tensor(t.Name).ToArray();
            var want = f["updated." + t.Name].Data;
            if (t.Name.EndsWith("attn.c_attn.bias", StringComparison.Ordinal))
            {
                // The key bias adds q·b_k to every score of a query: softmax cancels it, so its true gradient is 0 and
                // both sides hold only rounding noise, which Adam's m/√v turns into steps of up to ±lr in either
                // direction. Those 8 elements are checked against that bound; the query and value biases exactly.
                var start = f["param." + t.Name].Data;
                for (int i = 8; i < 16; i++)
                {
                    Assert.That(Math.Abs(got[i] - start[i]), Is.LessThanOrEqualTo(2 * 5e-2 + 1e-6), $"key bias [{i}] moved at most 2·lr");
                    got[i] = (float)want[i];
                }
            }

            ModelTestUtil.AssertClose(got, want, Tol, "updated " + t.Name);
        }
        ModelTestUtil.AssertClose(trainer.ValueHead.Parameters.AsSpan(0, 8), f["updated.v_head.weight"].Data, Tol, "updated value head weight");
        ModelTestUtil.AssertClose(trainer.ValueHead.Parameters.AsSpan(8, 1), f["updated.v_head.bias"].Data, Tol, "updated value head bias");
        Assert.That(reference.Tensor("transformer.wte.weight").ToArray(), Is.EqualTo(f["ref.transformer.wte.weight"].AsFloats()), "the reference stays frozen");
    }

    private static void Close(double actual, double expected, string what, double abs = 1e-7) =>
        Assert.That(actual, Is.EqualTo(expected).Within(Tol * Math.Abs(expected) + abs), what);

    private sealed class CountingTokenizer(int size) : ITokenizer
    {
        public int VocabSize => size;

        public int? BosId => null;

        public int? EosId => null;

        public int[] Encode(string text) => [.. text.Select(c => c % size)];

        public string Decode(ReadOnlySpan<int> ids) => string.Concat(ids.ToArray().Select(i => (char)('a' + i % 26)));

        public string TokenToString(int id) => ((char)('a' + id % 26)).ToString();
    }
}
