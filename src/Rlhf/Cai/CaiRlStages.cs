using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Feedback;
using Rlhf.IO;
using Rlhf.Ppo;
using Rlhf.Reward;

namespace Rlhf.Cai;

/// <summary>
/// The RLAIF half of `rlhf cai run`: a reward model on the AI-labelled (soft) pairs, PPO of the SFT model against it,
/// and an evaluation of SFT vs PPO. Settings come from the config's "train_reward", "ppo" and "eval" sections.
/// </summary>
public static class CaiRlStages
{
    public static CaiPipeline Pipeline() =>
        CaiPipeline.Create(new DelegateStage("train-reward", TrainReward), new DelegateStage("ppo", Ppo), new DelegateStage("eval", Eval));

    /// <summary>Reward model from the SFT model's trunk, trained on prefs/pairs.jsonl (their "preference" soft labels).</summary>
    public static void TrainReward(CaiRunContext context)
    {
        var config = context.Config;
        var s = config.Section("train_reward");
        var d = new RewardModelOptions();
        var options = d with
        {
            LearningRate = Float(s, "learning_rate", d.LearningRate, config),
            Epochs = Int(s, "epochs", d.Epochs, config),
            BatchSize = Int(s, "batch_size", d.BatchSize, config),
            MaxLength = Int(s, "max_length", d.MaxLength, config),
            Seed = config.Seed,
        };
        var (trunk, tokenizer) = CaiJobs.LoadModel(context.SftModelDirectory, config.Tokenizer);
        var pairs = PreferencePairs.Read(context.PairsPath);
        var trainer = new RewardTrainer(trunk, tokenizer, TokenizerName(config), options);
        var result = trainer.Train(pairs, e => context.Log($"train-reward epoch {e.Epoch}: loss {e.TrainLoss:F4}, held-out accuracy {e.HeldOutAccuracy:F3}"));
        trainer.Save(context.RewardDirectory);
        context.Log($"train-reward: {result.TrainPairs} pairs, saved {context.RewardDirectory}");
    }

    /// <summary>PPO (LoRA) of the SFT model on the red-team prompts in the chat format, rewarded by the stage's reward model.</summary>
    public static void Ppo(CaiRunContext context)
    {
        var config = context.Config;
        var s = config.Section("ppo");
        var d = new PpoOptions();
        var options = d with
        {
            MaxSteps = Int(s, "steps", 4, config),
            BatchSize = Int(s, "batch_size", 4, config),
            MiniBatchSize = Int(s, "mini_batch_size", 2, config),
            PpoEpochs = Int(s, "ppo_epochs", d.PpoEpochs, config),
            LearningRate = Float(s, "learning_rate", d.LearningRate, config),
            MaxNewTokens = Int(s, "max_new_tokens", 32, config),
            InitialKlCoef = Float(s, "kl_coef", d.InitialKlCoef, config),
            LoraRank = Int(s, "lora_rank", d.LoraRank, config),
            Seed = config.Seed,
        };
        var (policy, tokenizer) = CaiJobs.LoadModel(context.SftModelDirectory, config.Tokenizer);
        var reward = RewardModel.Load(context.RewardDirectory);
        using var trainer = new PpoTrainer(policy, tokenizer, reward, ChatPrompts(config), options);
        PpoRun.Run(trainer, context.PpoDirectory, progress: m => context.Log($"ppo iteration {m.Iteration}: score {m.MeanScore:F3}, KL {m.MeanKl:F3}"));
    }

    /// <summary>SFT vs PPO on the red-team prompts: mean unwanted-class probability from eval.scorer, mean reward, KL.</summary>
    public static void Eval(CaiRunContext context)
    {
        var config = context.Config;
        var s = config.Section("eval");
        string scorerSpec = config.EvalScorer;

        var (model, tokenizer) = CaiJobs.LoadModel(context.SftModelDirectory, config.Tokenizer);
        var scorer = PpoInputs.Scorer(scorerSpec, tokenizer);
        using var scorerResources = scorer as IDisposable; // an ONNX scorer's session
        var reward = RewardModel.Load(context.RewardDirectory);
        var prompts = ChatPrompts(config);
        var options = new EvalOptions { MaxNewTokens = Int(s, "max_new_tokens", 32, config), Seed = config.Seed };
        var before = PpoEvaluation.Evaluate("sft", model, false, tokenizer, prompts, scorer, reward, options);
        PpoInputs.LoadAdapter(model, Path.Combine(context.PpoDirectory, "final"));
        var after = PpoEvaluation.Evaluate("ppo", model, true, tokenizer, prompts, scorer, reward, options);
        PpoEvaluation.WriteReport(context.EvalDirectory, [before, after]);
        context.Log(PpoEvaluation.Table([before, after]));
    }

    private static List<string> ChatPrompts(CaiRunConfig config) =>
        RedTeamPrompts.Load(config.Prompts, config.Limit).Select(p => config.ChatFormat.RenderPrompt(p.Text)).ToList();

    private static string TokenizerName(CaiRunConfig config) => config.Tokenizer == "bytes" ? "byte" : config.Tokenizer;

    private static int Int(JsonElement section, string name, int fallback, CaiRunConfig config)
    {
        if (!section.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i >= 0
            ? i
            : throw new InvalidInputException($"{config.Source}: {name} must be a non-negative integer");
    }

    private static float Float(JsonElement section, string name, float fallback, CaiRunConfig config)
    {
        if (!section.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind == JsonValueKind.Number && v.GetDouble() >= 0
            ? (float)v.GetDouble()
            : throw new InvalidInputException($"{config.Source}: {name} must be a non-negative number");
    }
}
