using System.Text.Json;
using Rlhf.Formats;
using Rlhf.IO;

namespace Rlhf.Ppo;

public sealed partial class PpoTrainer
{
    public const string StateFileName = "trainer_state.json";
    public const string TensorsFileName = "ppo_state.safetensors";

    /// <summary>
    /// Writes everything a bit-exact resume needs into <paramref name="directory"/>: trained weights (adapter or full
    /// policy), value head, AdamW moments and step, β, score moments and the iteration (which fixes the data position
    /// and every RNG stream). The frozen base is not copied: resume loads it from the same model files.
    /// </summary>
    public void SaveCheckpoint(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        SyncHost();
        var t = new NamedTensors(directory);
        t.Add("policy.trainable", [trainable.Length], (float[])trainable.Clone());
        t.Add("value_head", [valueHead.Parameters.Length], (float[])valueHead.Parameters.Clone());
        t.Add("adam.policy.m", [policyM.Length], (float[])policyM.Clone());
        t.Add("adam.policy.v", [policyV.Length], (float[])policyV.Clone());
        t.Add("adam.head.m", [headM.Length], (float[])headM.Clone());
        t.Add("adam.head.v", [headV.Length], (float[])headV.Clone());
        Safetensors.Write(Path.Combine(directory, TensorsFileName), t);
        var state = new CheckpointState(Iteration, OptimizerSteps, Kl.Value, ScoreMoments.Mean, ScoreMoments.Variance, ScoreMoments.Std, ScoreMoments.Count, UsesLora, trainable.Length, Options.Seed);
        AtomicFile.WriteAllText(Path.Combine(directory, StateFileName), JsonSerializer.Serialize(state, StateJson));
    }

    /// <summary>Restores a <see cref="SaveCheckpoint"/> into this trainer (built with the same model, prompts and options).</summary>
    /// <exception cref="InvalidInputException">The checkpoint is missing, malformed, or was made for another setup.</exception>
    public void LoadCheckpoint(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string statePath = Path.Combine(directory, StateFileName);
        if (!File.Exists(statePath)) throw new InvalidInputException($"{statePath} does not exist; not a PPO checkpoint.");
        CheckpointState state;
        try
        {
            state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(statePath), StateJson) ?? throw new InvalidInputException($"{statePath} is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{statePath}: {e.Message}");
        }

        if (state.UsesLora != UsesLora || state.TrainableLength != trainable.Length)
            throw new InvalidInputException($"{statePath} was written for {(state.UsesLora ? "LoRA" : "full fine-tuning")} with {state.TrainableLength} trained weights; this trainer has {trainable.Length}.");
        if (state.Seed != Options.Seed) throw new InvalidInputException($"{statePath} was written with seed {state.Seed}, this run uses {Options.Seed}.");
        var t = Safetensors.Read(Path.Combine(directory, TensorsFileName));
        SyncHost();
        t.Get("policy.trainable", [trainable.Length]).CopyTo(trainable, 0);
        t.Get("value_head", [valueHead.Parameters.Length]).CopyTo(valueHead.Parameters, 0);
        t.Get("adam.policy.m", [policyM.Length]).CopyTo(policyM, 0);
        t.Get("adam.policy.v", [policyV.Length]).CopyTo(policyV, 0);
        t.Get("adam.head.m", [headM.Length]).CopyTo(headM, 0);
        t.Get("adam.head.v", [headV.Length]).CopyTo(headV, 0);
        // The host now holds the state: the next device step uploads it.
        deviceStateResident = false;
        Iteration = state.Iteration;
        OptimizerSteps = state.OptimizerSteps;
        Kl.Value = state.KlCoef;
        ScoreMoments.Mean = state.ScoreMean;
        ScoreMoments.Variance = state.ScoreVariance;
        ScoreMoments.Std = state.ScoreStd;
        ScoreMoments.Count = state.ScoreCount;
    }

    private static readonly JsonSerializerOptions StateJson = new() { WriteIndented = true };

    private sealed record CheckpointState(
        int Iteration, int OptimizerSteps, float KlCoef, double ScoreMean, double ScoreVariance, double ScoreStd, double ScoreCount,
        bool UsesLora, int TrainableLength, ulong Seed);
}
