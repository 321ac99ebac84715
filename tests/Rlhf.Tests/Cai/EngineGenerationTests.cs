using Rlhf.Cai;
using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cai;

/// <summary>CAI's sampling through <see cref="EngineLanguageModel"/>.</summary>
public class EngineGenerationTests
{
    [Test]
    public void Generate_StopsAtAnyIdOfTheModelsEosList()
    {
        // Every id but the tokenizer's EOS is in the model's eos_token_id list: each text is one token, which it leaves out.
        var plain = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, 32, 16, 1, 2));
        plain.InitializeRandom(4, std: 0.5f);
        var listed = new TransformerModel(plain.Config with { EosTokenIds = TokenIdList.List(Enumerable.Range(0, ByteTokenizer.Size).Where(t => t != ByteTokenizer.Eos)) });
        plain.Parameters.CopyTo(listed.Parameters, 0);
        var tok = new ByteTokenizer();
        var sampling = new CaiSampling(MaxNewTokens: 6, Temperature: 1f, TopP: 1f);
        string[] prompts = ["Hi there", "Be kind", "Say no"];
        Assert.That(new EngineLanguageModel(plain, tok).Generate(prompts, sampling, 3), Has.Some.Not.Empty, "without the list");
        Assert.That(new EngineLanguageModel(listed, tok).Generate(prompts, sampling, 3), Is.All.Empty);
    }
}
