using Rlhf.Reward;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Reward;

public class TokenRowsTests
{
    [Test]
    public void Encode_PutsBosPromptResponseEos_AndTruncatesFromTheLeftKeepingBosAndEos()
    {
        const int B = ByteTokenizer.Bos, E = ByteTokenizer.Eos;
        var rows = new TokenRows(new ByteTokenizer(), maxLength: 7, PaddingSide.Right);
        Assert.That(rows.Encode("ab", "cd"), Is.EqualTo(new[] { B, 'a', 'b', 'c', 'd', E }));
        Assert.That(rows.Encode("abc", "defg"), Is.EqualTo(new[] { B, 'c', 'd', 'e', 'f', 'g', E }));
        Assert.That(rows.Encode("", "uvwxyz"), Is.EqualTo(new[] { B, 'v', 'w', 'x', 'y', 'z', E }));
        Assert.That(rows.Encode("", ""), Is.EqualTo(new[] { B, E }));
    }

    [Test]
    public void Pack_RightAndLeftPadding_MaskMarksRealTokens()
    {
        var data = new List<int[]> { new[] { 1, 2, 3 }, new[] { 4 }, new[] { 5, 6 } };
        int[] tokens = [];
        float[] mask = [];
        int seq = TokenRows.Pack(data, [2, 0], PaddingSide.Right, 9, ref tokens, ref mask);
        Assert.That(seq, Is.EqualTo(3));
        Assert.That(tokens[..6], Is.EqualTo(new[] { 5, 6, 9, 1, 2, 3 }));
        Assert.That(mask[..6], Is.EqualTo(new float[] { 1, 1, 0, 1, 1, 1 }));
        seq = TokenRows.Pack(data, [1, 2], PaddingSide.Left, 9, ref tokens, ref mask);
        Assert.That(seq, Is.EqualTo(2));
        Assert.That(tokens[..4], Is.EqualTo(new[] { 9, 4, 5, 6 }));
        Assert.That(mask[..4], Is.EqualTo(new float[] { 0, 1, 1, 1 }));
    }

    [Test]
    public void Pack_BadIndex_NamesIt()
    {
        int[] tokens = [];
        float[] mask = [];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TokenRows.Pack(new List<int[]> { new[] { 1 } }, [0, 3], PaddingSide.Right, 0, ref tokens, ref mask));
        Assert.That(e!.Message, Does.Contain("indices[1] = 3"));
    }

    [Test]
    public void Split_IsSeededDisjointAndComplete()
    {
        var (train, held) = DataSplit.Split(50, 0.1, 7);
        var (train2, held2) = DataSplit.Split(50, 0.1, 7);
        var (_, held3) = DataSplit.Split(50, 0.1, 8);
        Assert.That(held, Has.Length.EqualTo(5));
        Assert.That(train.Concat(held).OrderBy(x => x), Is.EqualTo(Enumerable.Range(0, 50)));
        Assert.That(held2, Is.EqualTo(held));
        Assert.That(train2, Is.EqualTo(train));
        Assert.That(held3, Is.Not.EqualTo(held));
    }
}
