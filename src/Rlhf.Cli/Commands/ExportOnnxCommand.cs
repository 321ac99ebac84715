using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.IO;
using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf export-onnx: an engine model (HF folder or llama2.c .bin, optional PEFT adapter) → ONNX graph with a KV cache.</summary>
internal static class ExportOnnxCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face folder (config.json + model.safetensors) or llama2.c .bin checkpoint", Required = true };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors; default: none)" };
        var loraInputs = CommonOptions.Flag("--lora-inputs", "make the adapter's A/B matrices graph inputs (PEFT names), so one graph serves every adapter version; needs --adapter");
        var valueHead = CommonOptions.Flag("--value-head", "add a values [batch, seq] output from v_head.summary.weight/bias in the model's safetensors");
        var output = CommonOptions.Output("ONNX file to write (weights over 2 GB go to <file>.data)");
        var force = CommonOptions.Force();
        var command = new Command("export-onnx", "Export a GPT-2 or Llama model to ONNX (opset 17): input_ids, attention_mask, position_ids, past key/values in; logits and present key/values out.")
        {
            model, adapter, loraInputs, valueHead, output, force,
        };
        ConfigFile.AddTo(command);
        command.SetAction(parse =>
        {
            var outFile = parse.GetValue(output)!;
            CommonOptions.CheckOverwrite(outFile, parse.GetValue(force));
            if (parse.GetValue(loraInputs) && parse.GetValue(adapter) is null)
                throw new InvalidInputException("--lora-inputs needs --adapter (the adapter defines the inputs' names, rank and scale).");
            string modelPath = parse.GetValue(model)!;
            var (m, head) = ModelFiles.Load(null, () =>
            {
                var loaded = ModelCheckpoint.Load(modelPath);
                if (parse.GetValue(adapter) is { } dir) AttachPeft(loaded, dir.FullName);
                return (loaded, parse.GetValue(valueHead) ? ReadValueHead(modelPath, loaded.Config.ModelDim) : null);
            });

            if (outFile.Directory is { Exists: false } d) d.Create();
            OnnxExporter.ExportCausalLm(m, outFile.FullName, new OnnxExportOptions { LoraInputs = parse.GetValue(loraInputs), ValueHead = head });
            var c = m.Config;
            string lora = m.Adapter is null ? "none" : parse.GetValue(loraInputs) ? "inputs" : "baked-in";
            return CliOutput.Of(parse).Result(
                new JsonObject
                {
                    ["output"] = outFile.FullName, ["family"] = c.Family.ToString(), ["layers"] = c.LayerCount, ["model_dim"] = c.ModelDim, ["heads"] = c.HeadCount,
                    ["kv_heads"] = c.KvHeadCount, ["vocab"] = c.VocabSize, ["lora"] = lora, ["values_output"] = head is not null,
                },
                $"wrote {outFile.FullName}: {c.Family}, {c.LayerCount} layers, d={c.ModelDim}, heads={c.HeadCount}/{c.KvHeadCount}, vocab={c.VocabSize}" +
                (m.Adapter is null ? "" : parse.GetValue(loraInputs) ? $", LoRA inputs ({m.Adapter.Tensors.Count} tensors)" : ", LoRA baked in") +
                (head is null ? "" : ", values output"));
        });
        return command;
    }

    /// <summary>Attaches a PEFT adapter: targets are its full module paths; rsLoRA's scale is kept through alpha.</summary>
    private static void AttachPeft(TransformerModel model, string directory)
    {
        var files = PeftLoraAdapter.Read(directory);
        var modules = files.ModulePaths();
        if (modules.Count == 0) throw new InvalidInputException($"adapter {directory}: no LoRA A/B tensors.");
        var cfg = files.Config;
        var adapter = model.AttachAdapter(new LoraConfig(cfg.R, cfg.Scaling * cfg.R, modules), 0);
        foreach (var t in adapter.Tensors) adapter.LoadTensor(t.Name, files.Tensors.Get(t.Name, t.Shape));
    }

    private static ScoreHead ReadValueHead(string modelPath, int modelDim)
    {
        if (!Directory.Exists(modelPath)) throw new InvalidInputException($"--value-head needs a Hugging Face folder with v_head.summary.weight; {modelPath} is a file.");
        var tensors = HfCheckpoint.ReadTensors(modelPath);
        var head = ScoreHead.Value(modelDim);
        foreach (var t in head.Tensors)
        {
            if (!tensors.Contains(t.Name)) throw new InvalidInputException($"model {modelPath}: --value-head needs tensor {t.Name} in {HfCheckpoint.WeightsFileName}.");
            head.LoadTensor(t.Name, tensors.Get(t.Name, t.Shape));
        }

        return head;
    }
}
