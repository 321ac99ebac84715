using System.Text.Json.Nodes;
using Rlhf.Formats;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tests.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Reward;

/// <summary>A damaged head_config.json fails naming the file and the field (not a NullReferenceException or a JSON conversion error).</summary>
public class HeadConfigTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder() => dir = Directory.CreateTempSubdirectory("rlhf-head-config-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    private void SaveWith(string field, JsonNode? value, bool remove = false)
    {
        PpoTestSupport.SaveTinyRewardModel(dir, config: new JsonObject { ["reward_mean"] = 0.5, ["reward_std"] = 2.0 });
        string path = Path.Combine(dir, ScoredModelFiles.ConfigFileName);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if (remove) json.Remove(field);
        else json[field] = value;
        File.WriteAllText(path, json.ToJsonString());
    }

    private static IEnumerable<TestCaseData> BadFields()
    {
        yield return new TestCaseData("max_length", null, true).SetName("max_length missing");
        yield return new TestCaseData("outputs", null, true).SetName("outputs missing");
        yield return new TestCaseData("outputs", null, false).SetName("outputs null");
        yield return new TestCaseData("outputs", JsonValue.Create("1"), false).SetName("outputs a string");
        yield return new TestCaseData("outputs", JsonValue.Create(0), false).SetName("outputs 0");
        yield return new TestCaseData("outputs", JsonValue.Create(int.MaxValue), false).SetName("outputs huge");
        yield return new TestCaseData("max_length", JsonValue.Create(-1), false).SetName("max_length negative");
        yield return new TestCaseData("max_length", JsonValue.Create(int.MaxValue), false).SetName("max_length huge");
        yield return new TestCaseData("max_length", JsonValue.Create(1000), false).SetName("max_length beyond the context");
        yield return new TestCaseData("reward_std", JsonValue.Create("NaN"), false).SetName("reward_std a string");
        yield return new TestCaseData("reward_std", JsonValue.Create(0), false).SetName("reward_std 0");
        yield return new TestCaseData("kind", JsonValue.Create(7), false).SetName("kind a number");
        yield return new TestCaseData("padding", JsonValue.Create("middle"), false).SetName("padding unknown");
    }

    [TestCaseSource(nameof(BadFields))]
    public void Load_BadField_NamesFileAndField(string field, JsonNode? value, bool remove)
    {
        SaveWith(field, value, remove);
        var e = Assert.Throws<CheckpointFormatException>(() => RewardModel.Load(dir))!;
        Assert.That(e.Item, Is.EqualTo(field), e.Message);
        Assert.That(e.Message, Does.Contain(ScoredModelFiles.ConfigFileName).And.Contain(field));
    }

    [Test]
    public void Load_SoundConfig_ReadsEveryField()
    {
        SaveWith("padding", JsonValue.Create("left"));
        var rm = RewardModel.Load(dir);
        Assert.That((rm.RewardMean, rm.RewardStd), Is.EqualTo((0.5, 2.0)));
    }
}
