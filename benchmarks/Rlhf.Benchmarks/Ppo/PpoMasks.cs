namespace Rlhf.Benchmarks.Ppo;

/// <summary>Response masks for the PPO suites: "padded" rows are valid for a random T/2…T steps then padding, as
/// TRL pads a batch's responses (about a quarter of the tokens are padding); "all valid" rows have none.</summary>
internal static class PpoMasks
{
    public const string Padded = "padded";
    public const string AllValid = "all valid";

    public static float[] Create(string kind, Random rng, int batch, int steps)
    {
        var mask = new float[batch * steps];
        for (int b = 0; b < batch; b++)
            mask.AsSpan(b * steps, kind == AllValid ? steps : rng.Next(steps / 2, steps + 1)).Fill(1f);
        return mask;
    }
}
