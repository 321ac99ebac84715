using System.CommandLine;
using System.Text.Json;
using Rlhf.Ppo;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf eval: mean toxicity, reward and KL to the reference of a model before and after (its adapter off / on).</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var d = new EvalOptions();
        var model = new Option<string>("--model") { Description = "base model: HF folder or llama2.c .bin", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "'byte', 'gpt2', or a llama2.c tok*.bin file", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder (e.g. a PPO run's final/): evaluates before (base) and after (base + adapter)" };
        var prompts = new Option<string>("--prompts") { Description = "JSONL with a \"prompt\" per line, or demo:customer", Required = true };
        var scorer = new Option<string>("--scorer") { Description = "toxicity scorer: CLASSIFIER_DIR#UNWANTED_CLASS, MODEL.onnx#UNWANTED_CLASS or keyword:WORD", Required = true };
        var reward = new Option<string>("--reward") { Description = "optional reward for the mean-reward column: REWARD_MODEL_DIR, CLASSIFIER_DIR#WANTED_CLASS, MODEL.onnx#WANTED_CLASS or keyword:WORD" };
        var output = new Option<string>("--out") { Description = "folder for eval.md and eval.json" };
        var json = CommonOptions.Json();
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => d.MaxNewTokens };
        var temperature = new Option<float>("--temperature") { DefaultValueFactory = _ => d.Temperature };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => d.Seed };
        var command = new Command("eval", "Mean toxicity (probability of the unwanted class), reward and KL to the reference, before and after.")
        {
            model, tokenizer, adapter, prompts, scorer, reward, output, json, maxNew, temperature, seed,
        };
        command.SetAction(parse =>
        {
            var tok = PpoInputs.Tokenizer(parse.GetValue(tokenizer)!);
            var sc = PpoInputs.Scorer(parse.GetValue(scorer), tok);
            var rw = parse.GetValue(reward) is { } r ? PpoInputs.Reward(r, tok) : null;
            var ps = PpoInputs.Prompts(parse.GetValue(prompts)!);
            var m = PpoInputs.Model(parse.GetValue(model)!);
            if (tok.VocabSize != m.Config.VocabSize) throw new Rlhf.IO.InvalidInputException($"the tokenizer has {tok.VocabSize} tokens but the model's vocabulary has {m.Config.VocabSize}.");
            var o = new EvalOptions { MaxNewTokens = parse.GetValue(maxNew), Temperature = parse.GetValue(temperature), Seed = parse.GetValue(seed) };
            var results = new List<EvalResult> { PpoEvaluation.Evaluate("before", m, false, tok, ps, sc, rw, o) };
            if (parse.GetValue(adapter) is { } a)
            {
                PpoInputs.LoadAdapter(m, a);
                results.Add(PpoEvaluation.Evaluate("after", m, true, tok, ps, sc, rw, o));
            }

            if (parse.GetValue(output) is { } dir) PpoEvaluation.WriteReport(dir, results);
            var outw = parse.InvocationConfiguration.Output;
            outw.Write(parse.GetValue(json) ? JsonSerializer.Serialize(results, PpoRun.Json) + "\n" : PpoEvaluation.Table(results));
            return CliApp.Success;
        });
        return command;
    }
}
