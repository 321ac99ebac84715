using System.Buffers.Binary;
using System.Text;
using Rlhf.Formats;
using Rlhf.Tests.Formats;
using Rlhf.Tests.Support;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Tokenizers;

public class Llama2cTokenizerTests
{
    /// <summary>tok*.bin bytes: max_token_length, then (score, length, bytes) per piece.</summary>
    internal static byte[] TokFile(IReadOnlyList<(string Piece, float Score)> vocab)
    {
        var ms = new MemoryStream();
        var b4 = new byte[4];
        int max = 0;
        foreach (var (p, _) in vocab)
        {
            max = Math.Max(max, Encoding.UTF8.GetByteCount(p));
        }

        BinaryPrimitives.WriteInt32LittleEndian(b4, max);
        ms.Write(b4);
        foreach (var (p, s) in vocab)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(p);
            BinaryPrimitives.WriteSingleLittleEndian(b4, s);
            ms.Write(b4);
            BinaryPrimitives.WriteInt32LittleEndian(b4, bytes.Length);
            ms.Write(b4);
            ms.Write(bytes);
        }

        return ms.ToArray();
    }

    // Ids: 0..2 specials, 3..258 bytes, then 259 " ", 260 "a", 261 "b", 262 " a", 263 "ab", 264 " ab", 265 "ba", 266 "é", 267 " b"
    private static List<(string, float)> SmallVocab()
    {
        var v = new List<(string, float)> { ("<unk>", 0f), ("\n<s>\n", 0f), ("\n</s>\n", 0f) };
        for (int i = 0; i < 256; i++)
        {
            v.Add(($"<0x{i:X2}>", 0f));
        }

        v.AddRange([(" ", -1f), ("a", -2f), ("b", -3f), (" a", -4f), ("ab", -5f), (" ab", -6f), ("ba", -4f), ("é", -7f), (" b", -4f)]);
        return v;
    }

    private static Llama2cTokenizer Small() => Llama2cTokenizer.Parse(TokFile(SmallVocab()), "small.bin");

    [Test]
    public void Encode_MergesBestScoringPairFirst()
    {
        var tok = Small();
        // " ", "a", "b": pairs " a" (-4) and "ab" (-5) → " a" first, then " a"+"b" → " ab".
        Assert.That(tok.Encode("ab"), Is.EqualTo(new[] { 264 }));
        // " ", "a", "b", "a" → " a", "b", "a"; then "ba" (-4) beats " ab" (-6).
        Assert.That(tok.Encode("aba"), Is.EqualTo(new[] { 262, 265 }));
        // " ", "b", "a", "b": " b" and "ba" tie at -4, the leftmost merges → " b", "a", "b" → " b", "ab".
        Assert.That(tok.Encode("bab"), Is.EqualTo(new[] { 267, 263 }));
    }

    [Test]
    public void Encode_FallsBackToBytesAndAddsBosEos()
    {
        var tok = Small();
        // "ü" (C3 BC) is not a piece: bytes + 3; "é" is a piece.
        Assert.That(tok.Encode("üé"), Is.EqualTo(new[] { 259, 0xC3 + 3, 0xBC + 3, 266 }));
        Assert.That(tok.Encode("a", bos: true, eos: true), Is.EqualTo(new[] { 1, 262, 2 }));
        Assert.That(tok.Encode(""), Is.Empty);
        Assert.That(tok.Encode("", bos: true, eos: false), Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void Decode_UndoesDummyPrefixAndReadsBytePieces()
    {
        var tok = Small();
        Assert.That(tok.Decode([264]), Is.EqualTo("ab"));
        Assert.That(tok.Decode([1, 264, 2]), Is.EqualTo("ab"));
        Assert.That(tok.Decode([260, 264]), Is.EqualTo("a ab"));
        Assert.That(tok.Decode([259, 0xC3 + 3, 0xBC + 3, 266]), Is.EqualTo("üé"));
        Assert.That(tok.TokenToString(1), Is.EqualTo("\n<s>\n"));
        Assert.That(tok.TokenToString(13), Is.EqualTo("<0x0A>"));
        Assert.That(tok.Decode([13]), Is.EqualTo("\n"));
        foreach (string s in new[] { "ab ba", "  lead", "über é\n", "tab\tand 🙂" })
        {
            Assert.That(tok.Decode(tok.Encode(s)), Is.EqualTo(s), s);
        }
    }

    [Test]
    public void Decode_BadId_NamesIdAndVocabSize()
    {
        var tok = Small();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([5, 268]))!;
        Assert.That(e.ParamName, Is.EqualTo("ids"));
        Assert.That(e.Message, Does.Contain("token id 268 at index 1 is outside the vocabulary of size 268"));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([-1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.TokenToString(268));
    }

    [Test]
    public void Parse_Truncated_NamesFileAndToken()
    {
        byte[] bytes = TokFile(SmallVocab());
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizer.Parse(bytes.AsSpan(0, bytes.Length - 1), "t.bin"))!;
        Assert.That(e.Message, Is.EqualTo("file t.bin: token 267 has length 2, but 1 bytes are left"));
        var e2 = Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizer.Parse(bytes, "t.bin", vocabSize: 300))!;
        Assert.That(e2.Message, Is.EqualTo("file t.bin: truncated at token 268: 0 bytes left, its score and length need 8 (expected 300 tokens)"));
        Assert.That(Llama2cTokenizer.Parse(bytes, "t.bin", vocabSize: 260).VocabSize, Is.EqualTo(260));
    }

    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    [TestCase(float.NegativeInfinity)]
    public void Parse_NonFiniteScore_NamesFileAndToken(float score)
    {
        var vocab = SmallVocab();
        vocab[260] = ("a", score);
        var e = Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizer.Parse(TokFile(vocab), "t.bin"))!;
        Assert.That(e.Message, Does.Contain("t.bin").And.Contain("token 260").And.Contain("finite"));
    }

    [Test]
    public void Mismatch_FileCutOnATokenBoundary_NamesTheFileAndTheTokensRead()
    {
        // tok*.bin has no token count: 7 whole tokens read as a valid 7-token vocabulary, only the model's size can tell.
        var tok = Llama2cTokenizer.Parse(TokFile(SmallVocab()[..7]), "tok512.bin");
        string message = TokenizerVocabulary.Mismatch(tok, 512);
        Assert.That(message, Does.Contain("tok512.bin").And.Contain("7 tokens").And.Contain("truncated").And.Contain("512"));
    }

    [Test]
    [Category("Acceptance")]
    public void Tok512_MatchesRunCEncode()
    {
        var tok = Llama2cTokenizer.Load(FormatTestFiles.SharedStories("tok512.bin"));
        var f = Fixture.Load("formats_llama2c_tokenizer");
        Assert.That(tok.VocabSize, Is.EqualTo((int)f["vocab_size"].Scalar));
        Assert.That(tok.VocabSize, Is.EqualTo(512));
        for (int k = 0; f.Keys.Contains($"text{k}"); k++)
        {
            string text = Encoding.UTF8.GetString(Array.ConvertAll(f[$"text{k}"].AsInts(), i => (byte)i));
            Assert.That(tok.Encode(text), Is.EqualTo(f[$"ids{k}"].AsInts()), text);
            Assert.That(tok.Encode(text, bos: true, eos: true), Is.EqualTo(f[$"ids_bos_eos{k}"].AsInts()), text);
            Assert.That(tok.Decode(tok.Encode(text)), Is.EqualTo(text));
        }

        int[] ids = tok.Encode("Once upon a time, there was a little girl.");
        Assert.That(ids[..2], Is.EqualTo(new[] { 403, 407 }));
        Assert.That(tok.TokenToString(403), Is.EqualTo(" Once"));
        Assert.That(tok.Decode([1, 403, 407, 261]), Is.EqualTo("Once upon a"));
        Assert.That(tok.Decode([13, 35, 426]), Is.EqualTo("\n ."));
    }
}
