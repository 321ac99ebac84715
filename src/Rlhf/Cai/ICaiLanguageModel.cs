namespace Rlhf.Cai;

/// <summary>How replies are sampled.</summary>
public sealed record CaiSampling(int MaxNewTokens = 128, float Temperature = 0.7f, int TopK = 0, float TopP = 0.95f);

/// <summary>
/// What the CAI stages need from a language model: sample text continuations, and score fixed continuations.
/// The engine implements it with <see cref="EngineLanguageModel"/>; tests may use a model with known outputs.
/// </summary>
public interface ICaiLanguageModel
{
    /// <summary>One continuation per prompt (raw text, before any chat-format clean-up). Same seed, same text.</summary>
    IReadOnlyList<string> Generate(IReadOnlyList<string> prompts, CaiSampling sampling, ulong seed);

    /// <summary>
    /// log P(option | prompt) for each option: the sum of the log-probabilities of the option's tokens, teacher-forced
    /// after the prompt's tokens.
    /// </summary>
    double[] OptionLogProbs(string prompt, IReadOnlyList<string> options);
}
