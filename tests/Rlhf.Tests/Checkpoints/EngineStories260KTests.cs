using Rlhf.Checkpoints;
using Rlhf.Model;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Checkpoints;

/// <summary>The engine itself (KV-cache generation) reproduces llama2.c's greedy text for stories260K.</summary>
[Category("Acceptance")]
public class EngineStories260KTests
{
    [Test]
    public void GreedyGeneration_From_Bos_ReproducesTheExpectedText()
    {
        var model = ModelCheckpoint.Load(FormatTestFiles.SharedStories("stories260K.bin"));
        var tokenizer = Llama2cTokenizer.Load(FormatTestFiles.SharedStories("tok512.bin"), model.Config.VocabSize);
        string expected = File.ReadAllText(FormatTestFiles.SharedStories("greedy_t0_256steps.expected.txt"));

        // run.c with steps = 256 runs 256 forward passes from BOS, each printing the token it picks.
        var result = new Generator(model).Generate([[Llama2cTokenizer.Bos]], new GenerationOptions(MaxNewTokens: 256, Temperature: 0f));
        Assert.That(tokenizer.Decode(result.Tokens.AsSpan(0, result.Lengths[0])) + "\n", Is.EqualTo(expected));
    }
}
