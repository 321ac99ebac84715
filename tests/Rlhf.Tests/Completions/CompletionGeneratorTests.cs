using Rlhf.Completions;
using Rlhf.Feedback;
using Rlhf.Model;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Completions;

public class CompletionGeneratorTests
{
    private static TransformerModel TinyModel()
    {
        var m = new TransformerModel(TransformerConfig.Gpt2(vocabSize: 259, contextLength: 32, modelDim: 16, layerCount: 1, headCount: 2));
        m.InitializeRandom(1, std: 0.5f);
        return m;
    }

    private static readonly PromptRecord[] Prompts = [new("a", "Hello"), new("b", "How are you?")];

    [Test]
    public void SameSeed_SameSets_PermutationMapsShownToSamples()
    {
        var options = new GenerationOptions(MaxNewTokens: 8, Temperature: 1f, Seed: 5);
        var tok = new ByteTokenizer();
        var one = CompletionGenerator.Generate(TinyModel(), tok, Prompts, 4, options);
        var two = CompletionGenerator.Generate(TinyModel(), tok, Prompts, 4, options);
        var other = CompletionGenerator.Generate(TinyModel(), tok, Prompts, 4, options with { Seed = 6 });
        Assert.That(one, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
        {
            Assert.That(two[i].Texts, Is.EqualTo(one[i].Texts));
            Assert.That(two[i].Permutation, Is.EqualTo(one[i].Permutation));
            Assert.That(one[i].Permutation.OrderBy(x => x), Is.EqualTo(new[] { 0, 1, 2, 3 }));
            Assert.That(one[i].Ids, Is.EqualTo(new[] { "c1", "c2", "c3", "c4" }));
        }

        Assert.That(other[0].Texts, Is.Not.EqualTo(one[0].Texts));
        // Sample j is generated alone with seed base + 1000003·i + j: regenerate it and find it where the permutation says.
        var gen = new Generator(TinyModel());
        int[] row = [ByteTokenizer.Bos, .. tok.Encode("How are you?")];
        for (int shown = 0; shown < 4; shown++)
        {
            int sample = one[1].Permutation[shown];
            var g = gen.Generate([row], options with { Seed = 5 + 1000003UL + (ulong)sample, EosTokenId = ByteTokenizer.Eos, PadTokenId = ByteTokenizer.Pad });
            Assert.That(one[1].Texts[shown], Is.EqualTo(tok.Decode(g.Tokens.AsSpan(0, g.Lengths[0]))));
        }
    }

    [Test]
    public void AModelsEosList_EndsEveryCompletionAtItsFirstListedToken()
    {
        // Every id but the tokenizer's EOS is listed: each sample stops after one token, which the text leaves out.
        var plain = TinyModel();
        var listed = new TransformerModel(plain.Config with { EosTokenIds = TokenIdList.List(Enumerable.Range(0, 259).Where(t => t != ByteTokenizer.Eos)) });
        plain.Parameters.CopyTo(listed.Parameters, 0);
        var options = new GenerationOptions(MaxNewTokens: 8, Temperature: 1f, Seed: 5);
        var tok = new ByteTokenizer();
        Assert.That(CompletionGenerator.Generate(plain, tok, Prompts, 4, options).SelectMany(s => s.Texts), Has.Some.Not.Empty, "without the list");
        var sets = CompletionGenerator.Generate(listed, tok, Prompts, 4, options);
        Assert.That(sets.SelectMany(s => s.Texts), Is.All.Empty);
    }

    [Test]
    public void WrittenFile_IsReadableByCompletionSets_AndKeepsPermutationAndSettings()
    {
        string dir = Directory.CreateTempSubdirectory("rlhf-gen-").FullName;
        try
        {
            var options = new GenerationOptions(MaxNewTokens: 6, Temperature: 0.7f, TopK: 20, TopP: 0.9f, Seed: 3);
            var sets = CompletionGenerator.Generate(TinyModel(), new ByteTokenizer(), Prompts, 3, options);
            string path = Path.Combine(dir, "completions.jsonl");
            CompletionGenerator.Write(path, sets, options, "tiny");
            var loaded = CompletionSets.Load(path);
            Assert.That(loaded["b"].Completions.Select(c => c.Text), Is.EqualTo(sets[1].Texts));
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllLines(path)[0]);
            Assert.That(doc.RootElement.GetProperty("permutation").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(sets[0].Permutation));
            var g = doc.RootElement.GetProperty("generation");
            Assert.That(g.GetProperty("top_k").GetInt32(), Is.EqualTo(20));
            Assert.That(g.GetProperty("seed").GetUInt64(), Is.EqualTo(3UL));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Prompts_MissingIdsDefault_DuplicatesAndMissingPromptFail()
    {
        string dir = Directory.CreateTempSubdirectory("rlhf-prompts-").FullName;
        try
        {
            string path = Path.Combine(dir, "prompts.jsonl");
            File.WriteAllText(path, "{\"prompt\": \"x\"}\n{\"prompt_id\": \"q\", \"prompt\": \"y\"}\n");
            Assert.That(CompletionGenerator.ReadPrompts(path), Is.EqualTo(new[] { new PromptRecord("p1", "x"), new PromptRecord("q", "y") }));
            File.WriteAllText(path, "{\"prompt_id\": \"q\", \"prompt\": \"x\"}\n{\"prompt_id\": \"q\", \"prompt\": \"y\"}\n");
            Assert.That(Assert.Throws<Rlhf.IO.InvalidInputException>(() => CompletionGenerator.ReadPrompts(path))!.Message, Does.Contain(":2:").And.Contain("duplicate"));
            File.WriteAllText(path, "{\"id\": \"q\"}\n");
            Assert.That(Assert.Throws<Rlhf.IO.InvalidInputException>(() => CompletionGenerator.ReadPrompts(path))!.Message, Does.Contain(":1:").And.Contain("\"prompt\""));
            Assert.Throws<ArgumentOutOfRangeException>(() => CompletionGenerator.Generate(TinyModel(), new ByteTokenizer(), Prompts, 1, new GenerationOptions(4)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
