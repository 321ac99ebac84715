using Rlhf.Formats;
using static Rlhf.Tests.Formats.FormatTestFiles;

namespace Rlhf.Tests.Formats;

public class PeftLoraAdapterTests
{
    private static LoraAdapterFiles Sample(int r = 4)
    {
        var t = new NamedTensors();
        foreach (int layer in new[] { 0, 1 })
        {
            string module = $"transformer.h.{layer}.attn.c_attn";
            t.Add(PeftLoraAdapter.LoraAName(module), [r, 16], Random(r * 16, layer));
            t.Add(PeftLoraAdapter.LoraBName(module), [48, r], Random(48 * r, 10 + layer));
        }

        var config = new LoraAdapterConfig(r, 16f, ["c_attn"], "gpt2", FanInFanOut: true, LoraDropout: 0.05f);
        return new LoraAdapterFiles(config, t);
    }

    [Test]
    public void Names_FollowPeft()
    {
        Assert.That(PeftLoraAdapter.LoraAName("model.layers.3.self_attn.q_proj"), Is.EqualTo("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"));
        Assert.That(PeftLoraAdapter.LoraBName("transformer.h.0.attn.c_attn"), Is.EqualTo("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"));
        Assert.That(PeftLoraAdapter.TryParseName("base_model.model.x.y.lora_B.weight", out string m, out bool isA), Is.True);
        Assert.That((m, isA), Is.EqualTo(("x.y", false)));
        Assert.That(PeftLoraAdapter.TryParseName("model.x.lora_A.weight", out _, out _), Is.False);
    }

    [Test]
    public void WriteThenRead_RoundTrips()
    {
        using var dir = new TempDir();
        var a = Sample();
        PeftLoraAdapter.Write(dir.Path, a);
        Assert.That(File.Exists(dir.File("adapter_config.json")) && File.Exists(dir.File("adapter_model.safetensors")), Is.True);

        var back = PeftLoraAdapter.Read(dir.Path);
        Assert.That(back.Config with { TargetModules = [] }, Is.EqualTo(a.Config with { TargetModules = [] }));
        Assert.That(back.Config.TargetModules, Is.EqualTo(a.Config.TargetModules));
        Assert.That(back.Config.Scaling, Is.EqualTo(4f));
        Assert.That(back.Tensors.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(back.ModulePaths(), Is.EqualTo(new[] { "transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn" }));
        foreach (var t in a.Tensors)
        {
            Assert.That(back.Tensors[t.Name].Shape, Is.EqualTo(t.Shape));
            Assert.That(back.Tensors[t.Name].Data, Is.EqualTo(t.Data));
        }

        string json = File.ReadAllText(dir.File("adapter_config.json"));
        Assert.That(json, Does.Contain("\"peft_type\": \"LORA\"").And.Contain("\"r\": 4").And.Contain("\"task_type\": \"CAUSAL_LM\""));
    }

    [Test]
    public void ParseConfig_ReadsPeftOutput()
    {
        // As written by PEFT 0.10 for GPT-2 (keys PEFT adds but the engine ignores are kept to show they are tolerated).
        const string json = """
            {"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "gpt2", "bias": "none",
             "fan_in_fan_out": true, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null,
             "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 32, "lora_dropout": 0.1,
             "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null, "peft_type": "LORA",
             "r": 16, "rank_pattern": {}, "revision": null, "target_modules": ["c_attn", "c_proj"], "task_type": "CAUSAL_LM",
             "use_dora": false, "use_rslora": true}
            """;
        var c = PeftLoraAdapter.ParseConfig(System.Text.Encoding.UTF8.GetBytes(json), "cfg");
        Assert.That(c.R, Is.EqualTo(16));
        Assert.That(c.LoraAlpha, Is.EqualTo(32f));
        Assert.That(c.TargetModules, Is.EqualTo(new[] { "c_attn", "c_proj" }));
        Assert.That(c.FanInFanOut && c.UseRslora, Is.True);
        Assert.That(c.Scaling, Is.EqualTo(8f));
        Assert.That(c.LoraDropout, Is.EqualTo(0.1f));
    }

    [Test]
    public void ParseConfig_Errors_NameFileFieldAndValue()
    {
        Assert.That(Assert.Throws<CheckpointFormatException>(() => PeftLoraAdapter.ParseConfig(
                "{\"peft_type\": \"IA3\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q\"]}"u8, "cfg"))!.Message,
            Is.EqualTo("file cfg: peft_type 'IA3' is not supported (expected LORA)"));
        Assert.That(Assert.Throws<CheckpointFormatException>(() => PeftLoraAdapter.ParseConfig(
                "{\"peft_type\": \"LORA\", \"r\": 0, \"lora_alpha\": 8, \"target_modules\": [\"q\"]}"u8, "cfg"))!.Message,
            Is.EqualTo("file cfg: field r is 0, expected a positive integer"));
        Assert.That(Assert.Throws<CheckpointFormatException>(() => PeftLoraAdapter.ParseConfig(
                "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": \".*q\"}"u8, "cfg"))!.Message,
            Is.EqualTo("file cfg: field target_modules is \".*q\", expected a list of module names (a regex string is not supported)"));
    }

    [Test]
    public void Read_WrongRank_NamesFileAndTensor()
    {
        using var dir = new TempDir();
        var a = Sample(r: 4);
        PeftLoraAdapter.Write(dir.Path, a);
        File.WriteAllText(dir.File("adapter_config.json"),
            File.ReadAllText(dir.File("adapter_config.json")).Replace("\"r\": 4", "\"r\": 8"));
        var e = Assert.Throws<CheckpointFormatException>(() => PeftLoraAdapter.Read(dir.Path))!;
        string weights = dir.File("adapter_model.safetensors");
        Assert.That(e.Message, Is.EqualTo($"file {weights}: tensor base_model.model.transformer.h.0.attn.c_attn.lora_A.weight has shape [4,16], expected [r=8, in]"));
    }

    [Test]
    public void Write_UnpairedTensor_NamesMissingPair()
    {
        var t = new NamedTensors("mem");
        t.Add(PeftLoraAdapter.LoraAName("m"), [2, 3], new float[6]);
        var a = new LoraAdapterFiles(new LoraAdapterConfig(2, 4f, ["m"], null), t);
        using var dir = new TempDir();
        var e = Assert.Throws<CheckpointFormatException>(() => PeftLoraAdapter.Write(dir.Path, a))!;
        Assert.That(e.Message, Is.EqualTo("file mem: tensor base_model.model.m.lora_B.weight not found (pair of base_model.model.m.lora_A.weight)"));
        Assert.That(Directory.GetFiles(dir.Path), Is.Empty);
    }

    [Test]
    public void Validate_ForeignTensorName_IsAnError()
    {
        var t = new NamedTensors("mem");
        t.Add("transformer.wte.weight", [2, 3], new float[6]);
        var e = Assert.Throws<CheckpointFormatException>(() => PeftLoraAdapter.Validate(new LoraAdapterFiles(new LoraAdapterConfig(2, 4f, ["m"], null), t)))!;
        Assert.That(e.Message, Does.StartWith("file mem: tensor transformer.wte.weight is not a PEFT LoRA weight"));
    }
}
