using Rlhf.IO;

namespace Rlhf.Tests.Formats;

public class JsonLinesTests
{
    [Test]
    public void InvalidUtf8_IsBadInputNamingFileAndLine_NotReplacementCharacters()
    {
        // The default decoder turned the byte into U+FFFD, so a prompt nobody wrote was stored without a word.
        using var dir = new TempDir();
        string path = dir.File("in.jsonl");
        File.WriteAllBytes(path, [.. "{\"prompt\":\"ok\"}\n{\"prompt\":\"fine\"}\n{\"prompt\":\""u8, 0xFF, .. "\"}\n"u8]);
        var e = Assert.Throws<InvalidInputException>(() => JsonLines.Read(path).ToList())!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("3").And.Contain("UTF-8"));
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. "{\"prompt\":\"with a BOM\"}\n"u8]);
        Assert.That(JsonLines.Read(path).Single().RequireString("prompt"), Is.EqualTo("with a BOM"));
    }
}
