using Rlhf.Tokenizers;

namespace Rlhf.Tests.Tokenizers;

public class Gpt2TokenizerTests
{
    [Test]
    public void Encode_HelloWorld_MatchesGpt2Ids()
    {
        var tok = new Gpt2Tokenizer();
        Assert.That(tok.Encode("Hello world"), Is.EqualTo(new[] { 15496, 995 }));
        Assert.That((tok.VocabSize, tok.BosId, tok.EosId), Is.EqualTo((50257, 50256, 50256)));
        Assert.That(tok.TokenToString(995), Is.EqualTo(" world"));
        Assert.That(tok.TokenToString(50256), Is.EqualTo("<|endoftext|>"));
    }

    [Test]
    public void Decode_RoundTripsAndDropsEndOfText()
    {
        var tok = new Gpt2Tokenizer();
        string s = "Ünïcode, 日本, and  spaces!\n";
        int[] ids = tok.Encode(s);
        Assert.That(tok.Decode(ids), Is.EqualTo(s));
        Assert.That(tok.Decode([15496, 995, 50256]), Is.EqualTo("Hello world"));
    }

    [Test]
    public void Decode_BadId_NamesIdAndVocabSize()
    {
        var tok = new Gpt2Tokenizer();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([15496, 50257]))!;
        Assert.That(e.Message, Does.Contain("token id 50257 at index 1 is outside the vocabulary of size 50257"));
    }
}
