using Rlhf.Tokenizers;

namespace Rlhf.Tests.Tokenizers;

public class ByteTokenizerTests
{
    [Test]
    public void Encode_IsUtf8Bytes_AndRoundTrips()
    {
        var tok = new ByteTokenizer();
        Assert.That(tok.Encode("Aé"), Is.EqualTo(new[] { 0x41, 0xC3, 0xA9 }));
        foreach (string s in new[] { "", "plain ascii", "ünï 日本語 🙂\n\t\0end" })
        {
            Assert.That(tok.Decode(tok.Encode(s)), Is.EqualTo(s));
        }
    }

    [Test]
    public void Specials_AreOutsideTheByteRange_AndDecodeToNothing()
    {
        var tok = new ByteTokenizer();
        Assert.That((tok.VocabSize, tok.BosId, tok.EosId, tok.PadId), Is.EqualTo((259, 256, 257, 258)));
        Assert.That(tok.Decode([256, 0x68, 0x69, 257, 258, 258]), Is.EqualTo("hi"));
        Assert.That(new[] { tok.TokenToString(256), tok.TokenToString(0x41), tok.TokenToString(0x0A) }, Is.EqualTo(new[] { "<bos>", "A", "<0x0A>" }));
    }

    [Test]
    public void Decode_CutCharacter_BecomesReplacementChar()
    {
        var tok = new ByteTokenizer();
        Assert.That(tok.Decode([0x61, 0xE6, 0x97]), Is.EqualTo("a\uFFFD"));
    }

    [Test]
    public void Decode_BadId_NamesIdAndVocabSize()
    {
        var tok = new ByteTokenizer();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([1, 2, 259]))!;
        Assert.That(e.Message, Does.Contain("token id 259 at index 2 is outside the vocabulary of size 259"));
        Assert.That(e.ActualValue, Is.EqualTo(259));
    }
}
