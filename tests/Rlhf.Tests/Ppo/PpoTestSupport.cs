using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Ppo;

internal static class PpoTestSupport
{
    public static readonly string[] Prompts = ["hi", "ok", "so", "no", "yes", "be", "me", "we"];

    /// <summary>A random tiny GPT-2 over bytes (vocab 259): outputs start near uniform.</summary>
    public static TransformerModel TinyByteModel(ulong seed = 7)
    {
        var m = new TransformerModel(TransformerConfig.Gpt2(vocabSize: ByteTokenizer.Size, contextLength: 16, modelDim: 32, layerCount: 2, headCount: 2));
        m.InitializeRandom(seed, std: 0.3f);
        return m;
    }

    /// <summary>
    /// A reward-model folder as train-reward writes it, from <see cref="TinyByteModel"/> and a head filled with
    /// <paramref name="headValue"/> (zero by default, a fresh head); <paramref name="config"/> adds head_config.json fields.
    /// </summary>
    public static void SaveTinyRewardModel(string directory, float headValue = 0f, System.Text.Json.Nodes.JsonObject? config = null)
    {
        var model = TinyByteModel();
        var head = ScoreHead.Reward(model.Config.ModelDim);
        Array.Fill(head.Parameters, headValue);
        Rlhf.Reward.ScoredModelFiles.Save(directory, model, head, "byte", new Rlhf.Reward.TokenRows(new ByteTokenizer(), 16, Rlhf.Reward.PaddingSide.Right),
            Rlhf.Reward.RewardModel.Kind, config ?? []);
    }

    /// <summary>An easy test reward: the number of lowercase ASCII letters in the response (about 10% of random bytes).</summary>
    public sealed class LowercaseReward : Rlhf.Reward.IRewardFunction
    {
        public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
        {
            for (int i = 0; i < responses.Count; i++)
            {
                int c = 0;
                foreach (char ch in responses[i]) c += ch is >= 'a' and <= 'z' ? 1 : 0;
                rewards[i] = c;
            }
        }
    }

    /// <summary>Distinct n-grams / total n-grams over the responses (1 = all different).</summary>
    public static double DistinctNGrams(IEnumerable<string> texts, int n)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int total = 0;
        foreach (var t in texts)
        {
            for (int i = 0; i + n <= t.Length; i++)
            {
                seen.Add(t.Substring(i, n));
                total++;
            }
        }

        return total == 0 ? 0 : (double)seen.Count / total;
    }
}
