namespace Rlhf.Ppo;

/// <summary>
/// One iteration's rollouts, [B, R] per-response-token arrays row-major: prompt+response Tokens/Mask [B, S]
/// (S = PromptLength + ResponseLength, left-padded prompts), response token j of row b at sequence position
/// PromptLength + j, predicted from position PromptLength + j − 1 (where its log-prob and value are read, as TRL).
/// </summary>
public sealed class PpoRollout
{
    public PpoRollout(int batch, int promptLength, int responseLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(promptLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(responseLength);
        Batch = batch;
        PromptLength = promptLength;
        ResponseLength = responseLength;
        int n = batch * responseLength, s = promptLength + responseLength;
        Tokens = new int[batch * s];
        Mask = new float[batch * s];
        ResponseTokens = new int[n];
        ResponseMask = new float[n];
        OldLogProbs = new float[n];
        ReferenceLogProbs = new float[n];
        Values = new float[n];
        Kl = new float[n];
        Rewards = new float[n];
        Advantages = new float[n];
        Returns = new float[n];
        Scores = new float[batch];
        RawScores = new float[batch];
        Lengths = new int[batch];
        Prompts = new string[batch];
        Responses = new string[batch];
    }

    public int Batch { get; }

    public int PromptLength { get; }

    public int ResponseLength { get; }

    public int SequenceLength => PromptLength + ResponseLength;

    /// <summary>[B, S] prompt then response.</summary>
    public int[] Tokens { get; }

    /// <summary>[B, S] 1 on real tokens.</summary>
    public float[] Mask { get; }

    /// <summary>[B, R].</summary>
    public int[] ResponseTokens { get; }

    /// <summary>[B, R] 1 on generated tokens.</summary>
    public float[] ResponseMask { get; }

    /// <summary>[B, R] log π_old of each response token (recomputed by a forward pass, as TRL).</summary>
    public float[] OldLogProbs { get; }

    /// <summary>[B, R] log π_ref.</summary>
    public float[] ReferenceLogProbs { get; }

    /// <summary>[B, R] value-head predictions at rollout time.</summary>
    public float[] Values { get; }

    /// <summary>[B, R] per-token KL estimate used in the reward.</summary>
    public float[] Kl { get; }

    /// <summary>[B, R] −β·KL + score at the last token.</summary>
    public float[] Rewards { get; }

    /// <summary>[B, R] whitened GAE advantages.</summary>
    public float[] Advantages { get; }

    /// <summary>[B, R] unwhitened advantages + values.</summary>
    public float[] Returns { get; }

    /// <summary>[B] the scores entering the reward (after penalty, scaling and clipping).</summary>
    public float[] Scores { get; }

    /// <summary>[B] the reward function's raw output.</summary>
    public float[] RawScores { get; }

    /// <summary>[B] generated tokens per row.</summary>
    public int[] Lengths { get; }

    public string[] Prompts { get; }

    public string[] Responses { get; }
}
