using Rlhf.Classification;
using Rlhf.IO;

namespace Rlhf.Tests.Classification;

public class LabelledTextsTests
{
    private string dir = "";

    [SetUp]
    public void Create() => dir = Directory.CreateTempSubdirectory("rlhf-labels-").FullName;

    [TearDown]
    public void Delete() => Directory.Delete(dir, recursive: true);

    [Test]
    public void Csv_QuotedMultiLineFields_CustomColumns()
    {
        string path = Path.Combine(dir, "d.csv");
        File.WriteAllText(path, "id,tweet,class\n1,\"hello, \"\"you\"\"\nsecond line\",2\n2,plain,0\n");
        var data = LabelledTexts.Read(path, "tweet", "class");
        Assert.That(data, Is.EqualTo(new[] { new LabelledText("hello, \"you\"\nsecond line", "2"), new LabelledText("plain", "0") }));
        Assert.That(LabelledTexts.LabelNames(data), Is.EqualTo(new[] { "0", "2" }));
    }

    [Test]
    public void Jsonl_StringOrNumberLabels()
    {
        string path = Path.Combine(dir, "d.jsonl");
        File.WriteAllText(path, "{\"text\": \"a\", \"label\": \"toxic\"}\n\n{\"text\": \"b\", \"label\": 1}\n");
        var data = LabelledTexts.Read(path);
        Assert.That(data, Is.EqualTo(new[] { new LabelledText("a", "toxic"), new LabelledText("b", "1") }));
    }

    [Test]
    public void Errors_NameFileLineAndColumn()
    {
        string csv = Path.Combine(dir, "d.csv");
        File.WriteAllText(csv, "text,label\nok,1\n,0\n");
        Assert.That(Assert.Throws<InvalidInputException>(() => LabelledTexts.Read(csv))!.Message, Does.Contain("d.csv:3").And.Contain("empty \"text\""));
        Assert.That(Assert.Throws<InvalidInputException>(() => LabelledTexts.Read(csv, "tweet"))!.Message, Does.Contain("no column \"tweet\""));
        File.WriteAllText(csv, "text,label\nok,1,extra\n");
        Assert.That(Assert.Throws<InvalidInputException>(() => LabelledTexts.Read(csv))!.Message, Does.Contain("d.csv:2").And.Contain("expected 2 fields"));
        string jsonl = Path.Combine(dir, "d.jsonl");
        File.WriteAllText(jsonl, "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"}\n");
        Assert.That(Assert.Throws<InvalidInputException>(() => LabelledTexts.Read(jsonl))!.Message, Does.Contain("d.jsonl:2").And.Contain("\"label\""));
        Assert.Throws<InvalidInputException>(() => LabelledTexts.Read(Path.Combine(dir, "missing.csv")));
    }
}
