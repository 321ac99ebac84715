using System.Text;
using Rlhf.Formats;
using Rlhf.Model;

namespace Rlhf.Tests.Formats;

public class HfConfigJsonTests
{
    // Trimmed from Hugging Face's gpt2/config.json (n_inner null means 4·n_embd).
    private const string Gpt2Json = """
        {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": 50256,
         "eos_token_id": 50256, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768,
         "n_head": 12, "n_inner": null, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}
        """;

    // Trimmed from TinyLlama-1.1B's config.json.
    private const string LlamaJson = """
        {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
         "hidden_size": 2048, "intermediate_size": 5632, "max_position_embeddings": 2048, "model_type": "llama",
         "num_attention_heads": 32, "num_hidden_layers": 22, "num_key_value_heads": 4, "rms_norm_eps": 1e-05,
         "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false, "vocab_size": 32000}
        """;

    [Test]
    public void Parse_Gpt2()
    {
        var c = HfConfigJson.Parse(Encoding.UTF8.GetBytes(Gpt2Json), "gpt2.json");
        Assert.That(c, Is.EqualTo(new HfModelConfig(HfModelType.Gpt2, 768, 3072, 12, 12, 12, 1024, 50257, 1e-5f, 0f, true, 50256, 50256)));
        Assert.That(c, Is.EqualTo(HfModelConfig.Gpt2(768, 12, 12)));
        Assert.That(c.HeadDim, Is.EqualTo(64));
    }

    [Test]
    public void Parse_Llama()
    {
        var c = HfConfigJson.Parse(Encoding.UTF8.GetBytes(LlamaJson), "llama.json");
        Assert.That(c, Is.EqualTo(new HfModelConfig(HfModelType.Llama, 2048, 5632, 22, 32, 4, 2048, 32000, 1e-5f, 10000f, false, 1, 2)));
        Assert.That(c.KvDim, Is.EqualTo(256));
    }

    [Test]
    public void WriteThenRead_RoundTrips([Values] HfModelType type)
    {
        using var dir = new TempDir();
        var c = type == HfModelType.Gpt2
            ? HfModelConfig.Gpt2(64, 2, 4, maxPositions: 32, vocabSize: 259, intermediateSize: 200) with { EosTokenId = 257, BosTokenId = 256 }
            : new HfModelConfig(HfModelType.Llama, 64, 172, 5, 8, 4, 512, 512, 1e-5f, 500000f, true, 1, 2);
        string path = dir.File("config.json");
        HfConfigJson.Write(path, c);
        Assert.That(HfConfigJson.Read(path), Is.EqualTo(c));
        string text = File.ReadAllText(path);
        Assert.That(text, Does.Contain(type == HfModelType.Gpt2 ? "\"n_embd\": 64" : "\"num_key_value_heads\": 4"));
    }

    [Test]
    public void Read_UnknownModelType_NamesFileAndValue()
    {
        using var dir = new TempDir();
        string path = dir.File("config.json");
        File.WriteAllText(path, "{\"model_type\": \"mistral\", \"hidden_size\": 8}");
        var e = Assert.Throws<CheckpointFormatException>(() => HfConfigJson.Read(path))!;
        Assert.That(e.Message, Is.EqualTo($"file {path}: model_type 'mistral' is not supported (supported: gpt2, llama)"));
        Assert.That(e.Item, Is.EqualTo("model_type"));
    }

    [TestCase("bos_token_id", -5)]
    [TestCase("eos_token_id", -2)]
    [TestCase("pad_token_id", -7)]
    public void Parse_NegativeSpecialId_NamesFileAndField(string field, int id)
    {
        string json = $"{{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 259, \"{field}\": {id}}}";
        var e = Assert.Throws<CheckpointFormatException>(() => HfConfigJson.Parse(Encoding.UTF8.GetBytes(json), "config.json"))!;
        Assert.That(e.Message, Is.EqualTo($"file config.json: {field} = {id} is outside the vocabulary [0, 259)"));
        Assert.That(e.Item, Is.EqualTo(field));
    }

    [TestCase("bos_token_id", 259)]
    [TestCase("eos_token_id", 50256)] // what earlier versions wrote for the byte tokenizer's 259-token vocabulary
    [TestCase("eos_token_id", -1)] // older configs' "none"
    public void Parse_SpecialIdNamingNoToken_IsAbsent(string field, int id)
    {
        string json = $"{{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 259, \"{field}\": {id}}}";
        var c = HfConfigJson.Parse(Encoding.UTF8.GetBytes(json), "config.json");
        Assert.That(field == "bos_token_id" ? c.BosTokenId : c.EosTokenId, Is.Null);
    }

    [Test]
    public void Parse_SmallVocabularyWithoutSpecialIds_LeavesThemOut() // the class defaults (50256) are not in a 259-token vocabulary
    {
        var c = HfConfigJson.Parse("{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 259}"u8, "config.json");
        Assert.That((c.BosTokenId, c.EosTokenId), Is.EqualTo(((int?)null, (int?)null)));
    }

    [Test]
    public void Gpt2Defaults_SmallVocabulary_HaveNoSpecialIds_AndWrite()
    {
        using var dir = new TempDir();
        var c = HfModelConfig.Gpt2(8, 1, 2, maxPositions: 16, vocabSize: 259);
        Assert.That((c.BosTokenId, c.EosTokenId), Is.EqualTo(((int?)null, (int?)null)));
        string path = dir.File("config.json");
        HfConfigJson.Write(path, c);
        Assert.That(File.ReadAllText(path), Does.Not.Contain("token_id"));
        Assert.That(HfConfigJson.Read(path), Is.EqualTo(c));
    }

    // Trimmed from Meta-Llama-3.1-8B-Instruct's config.json: generation ends on any of three ids.
    private const string Llama3Json = """
        {"architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
         "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 131072,
         "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
         "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false, "vocab_size": 128256}
        """;

    private static HfModelConfig ParseWithEos(string eos, int vocab = 259) =>
        HfConfigJson.Parse(Encoding.UTF8.GetBytes($"{{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": {vocab}, \"eos_token_id\": {eos}}}"), "config.json");

    [Test]
    public void Parse_EosList_KeepsEveryIdAsAList()
    {
        var c = HfConfigJson.Parse(Encoding.UTF8.GetBytes(Llama3Json), "llama3.json");
        Assert.That(c.EosTokenId, Is.EqualTo(TokenIdList.List([128001, 128008, 128009])));
        Assert.That(c.EosTokenId!.IsList);
        Assert.That(c.BosTokenId, Is.EqualTo(128000));
        Assert.That(ParseWithEos("[257]").EosTokenId, Is.EqualTo(TokenIdList.List([257])), "a one-element list stays a list");
        var single = ParseWithEos("257").EosTokenId!;
        Assert.That((single.IsList, single.ToArray()), Is.EqualTo((false, new[] { 257 })), "a single id stays a single id");
        Assert.That(single, Is.Not.EqualTo(TokenIdList.List([257])));
    }

    [Test]
    public void Parse_EosList_LeavesOutIdsNamingNoToken() // −1 and ids past the vocabulary, element by element, as for a single id
    {
        Assert.That(ParseWithEos("[-1, 257, 50256, 3]").EosTokenId, Is.EqualTo(TokenIdList.List([257, 3])));
        Assert.That(ParseWithEos("[-1, 50256]").EosTokenId, Is.Null, "no id left: absent, as a single -1 or 50256 is");
    }

    [TestCase("[]", "field eos_token_id is [], expected an integer or a non-empty list of integers")]
    [TestCase("[257, \"x\"]", "field eos_token_id is [257,\"x\"]: element 1 is \"x\", expected an integer")]
    [TestCase("[257, 2.5]", "field eos_token_id is [257,2.5]: element 1 is 2.5, expected an integer")]
    [TestCase("[null]", "field eos_token_id is [null]: element 0 is null, expected an integer")]
    [TestCase("[[1, 2]]", "field eos_token_id is [[1,2]]: element 0 is [1,2], expected an integer")]
    [TestCase("[257, -5]", "eos_token_id[1] = -5 is outside the vocabulary [0, 259)")]
    [TestCase("\"2\"", "field eos_token_id is \"2\", expected an integer or a non-empty list of integers")]
    [TestCase("{\"id\": 2}", "field eos_token_id is {\"id\":2}, expected an integer or a non-empty list of integers")]
    public void Parse_BadEosList_NamesFileFieldAndValue(string eos, string message)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => ParseWithEos(eos))!;
        Assert.That(e.Message, Is.EqualTo("file config.json: " + message));
        Assert.That(e.Item, Is.EqualTo("eos_token_id"));
    }

    [Test]
    public void WriteThenRead_EosList_StaysAList()
    {
        using var dir = new TempDir();
        var c = new HfModelConfig(HfModelType.Llama, 64, 172, 2, 8, 4, 512, 512, 1e-5f, 500000f, false, 1, TokenIdList.List([2, 7, 9]));
        string path = dir.File("config.json");
        HfConfigJson.Write(path, c);
        Assert.That(HfConfigJson.Read(path), Is.EqualTo(c));
        Assert.That(System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!["eos_token_id"]!.ToJsonString(), Is.EqualTo("[2,7,9]"));
        HfConfigJson.Write(path, c with { EosTokenId = TokenIdList.List([9]) });
        Assert.That(System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!["eos_token_id"]!.ToJsonString(), Is.EqualTo("[9]"));
        Assert.That(HfConfigJson.Read(path).EosTokenId, Is.EqualTo(TokenIdList.List([9])));
    }

    [Test]
    public void Write_EosListWithAnIdOutsideTheVocabulary_NamesTheElement()
    {
        using var dir = new TempDir();
        string path = dir.File("config.json");
        var c = new HfModelConfig(HfModelType.Llama, 64, 172, 2, 8, 4, 512, 512, 1e-5f, 500000f, false, 1, TokenIdList.List([2, 512]));
        var e = Assert.Throws<CheckpointFormatException>(() => HfConfigJson.Write(path, c))!;
        Assert.That(e.Message, Is.EqualTo($"file {path}: eos_token_id[1] = 512 is outside the vocabulary [0, 512)"));
        Assert.That(File.Exists(path), Is.False);
    }

    [Test]
    public void Parse_WrongFieldType_NamesFieldAndValue()
    {
        var e = Assert.Throws<CheckpointFormatException>(() =>
            HfConfigJson.Parse("{\"model_type\": \"gpt2\", \"n_embd\": \"big\"}"u8, "c.json"))!;
        Assert.That(e.Message, Is.EqualTo("file c.json: field n_embd is \"big\", expected an integer"));
    }

    [Test]
    public void Parse_HeadsNotDividingHidden_NamesField()
    {
        var e = Assert.Throws<CheckpointFormatException>(() =>
            HfConfigJson.Parse("{\"model_type\": \"llama\", \"hidden_size\": 100, \"num_attention_heads\": 3}"u8, "c.json"))!;
        Assert.That(e.Message, Is.EqualTo("file c.json: hidden size 100 is not divisible by 3 heads"));
        Assert.That(e.Item, Is.EqualTo("num_attention_heads"));
    }

    [Test]
    public void Parse_BadJsonAndMissingModelType()
    {
        Assert.That(Assert.Throws<CheckpointFormatException>(() => HfConfigJson.Parse("{"u8, "c.json"))!.Message,
            Does.StartWith("file c.json: not valid JSON"));
        Assert.That(Assert.Throws<CheckpointFormatException>(() => HfConfigJson.Parse("{}"u8, "c.json"))!.Message,
            Is.EqualTo("file c.json: missing field model_type (supported: gpt2, llama)"));
    }

    [Test]
    public void Parse_RopeScaling_IsRejected()
    {
        var e = Assert.Throws<CheckpointFormatException>(() =>
            HfConfigJson.Parse("{\"model_type\": \"llama\", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}"u8, "c.json"))!;
        Assert.That(e.Message, Does.Contain("rope_scaling {\"type\":\"linear\",\"factor\":2.0} is not supported"));
    }

    [TestCase("{\"model_type\": \"gpt2\", \"activation_function\": \"relu\"}", "activation_function 'relu' is not supported (supported: gelu_new, gelu_pytorch_tanh)")]
    [TestCase("{\"model_type\": \"llama\", \"hidden_act\": \"gelu\"}", "hidden_act 'gelu' is not supported (supported: silu)")]
    [TestCase("{\"model_type\": \"llama\", \"attention_bias\": true}", "attention_bias = true is not supported")]
    [TestCase("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"head_dim\": 32}", "head_dim = 32 differs from hidden_size / num_attention_heads = 64 / 4; not supported")]
    public void Parse_UnsupportedVariant_NamesFieldAndValue(string json, string message)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => HfConfigJson.Parse(System.Text.Encoding.UTF8.GetBytes(json), "c.json"))!;
        Assert.That(e.Message, Is.EqualTo("file c.json: " + message));
    }
}
