using Rlhf.Tokenizers;

namespace Rlhf.Reward;

/// <summary>
/// A saved reward model (see <see cref="ScoredModelFiles"/>): (prompt, response) → scalar reward, raw or centred
/// ((r − mean) / std over the training set's responses, as saved by <see cref="RewardTrainer"/>).
/// </summary>
public sealed class RewardModel : IRewardFunction
{
    public const string Kind = "reward";

    private readonly SequenceScorer scorer;

    private RewardModel(SequenceScorer scorer, ITokenizer tokenizer, double mean, double std)
    {
        this.scorer = scorer;
        Tokenizer = tokenizer;
        RewardMean = mean;
        RewardStd = std;
    }

    public ITokenizer Tokenizer { get; }

    public double RewardMean { get; }

    public double RewardStd { get; }

    /// <summary>When true, <see cref="Score(IReadOnlyList{string}, IReadOnlyList{string}, Span{float})"/> returns centred rewards.</summary>
    public bool Centred { get; set; }

    public static RewardModel Load(string directory)
    {
        var (scorer, tokenizer, config) = ScoredModelFiles.Load(directory, Kind);
        if (scorer.Head.Outputs != 1) throw new Rlhf.IO.InvalidInputException($"{directory}: a reward model has one output, found {scorer.Head.Outputs}");
        // reward_std divides every centred reward: it must be finite and positive (train-reward never writes 0).
        var fields = new HeadConfigFields(Path.Combine(directory, ScoredModelFiles.ConfigFileName), config);
        return new RewardModel(scorer, tokenizer, fields.Double("reward_mean", 0), fields.Double("reward_std", 1, positive: true));
    }

    /// <summary>The reward of one response (raw unless <paramref name="centred"/>).</summary>
    public float Score(string prompt, string response, bool centred = false)
    {
        Span<float> r = stackalloc float[1];
        scorer.Score([scorer.Rows.Encode(prompt, response)], r);
        return centred ? Centre(r[0]) : r[0];
    }

    /// <summary>rewards[i] = reward of (prompts[i], responses[i]), centred when <see cref="Centred"/>.</summary>
    public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
    {
        var rows = scorer.Encode(prompts, responses);
        if (rewards.Length != rows.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {rows.Count}.", nameof(rewards));
        scorer.Score(rows, rewards);
        if (Centred)
        {
            for (int i = 0; i < rewards.Length; i++) rewards[i] = Centre(rewards[i]);
        }
    }

    private float Centre(float r) => (float)((r - RewardMean) / RewardStd);
}
