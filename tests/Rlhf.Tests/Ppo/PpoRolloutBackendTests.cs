using Rlhf.IO;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

public class PpoRolloutBackendTests
{
    private static PpoOptions Options(RolloutBackend backend) => new()
    {
        BatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 6, MaxSteps = 2, TopK = 1, LearningRate = 5e-3f,
        Seed = 11, RolloutBackend = backend,
    };

    [Test]
    public void OrtRollouts_EqualEngineRollouts_AndFollowTheUpdatedAdapter()
    {
        using var engine = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, Options(RolloutBackend.Engine));
        using var ort = new PpoTrainer(PpoTestSupport.TinyByteModel(), new ByteTokenizer(), new PpoTestSupport.LowercaseReward(), PpoTestSupport.Prompts, Options(RolloutBackend.Ort));
        for (int iteration = 0; iteration < 2; iteration++)
        {
            // Greedy (top-k 1) sampling: the same logits give the same tokens on either executor. The second iteration
            // samples after a PPO update, so ORT must be reading the adapter's live weights.
            var a = engine.Generate();
            var b = ort.Generate();
            Assert.That(b.ResponseTokens, Is.EqualTo(a.ResponseTokens), $"iteration {iteration}");
            engine.Step();
            ort.Step();
        }
    }

    [Test]
    public void OrtRollouts_NeedLora()
    {
        var e = Assert.Throws<InvalidInputException>(() => (Options(RolloutBackend.Ort) with { LoraRank = 0 }).Validate());
        Assert.That(e!.Message, Does.Contain("LoraRank"));
    }
}
