using Rlhf.IO;

namespace Rlhf.Cai;

/// <summary>Who speaks a turn of a conversation.</summary>
public enum ChatRole
{
    User,
    Assistant,
}

/// <summary>One turn of a conversation.</summary>
public readonly record struct ChatTurn(ChatRole Role, string Text);

/// <summary>
/// How a model family spells a conversation: each user turn is UserPrefix + text + UserSuffix, each assistant turn
/// AssistantPrefix + text + AssistantSuffix, and a prompt for the next reply ends with AssistantPrefix. The base
/// model's BOS is added by the tokenizer side, not here. <see cref="StopText"/> (when non-empty) ends a reply early:
/// a model that starts writing the next user turn has finished its own.
/// </summary>
public sealed record ChatFormat(string Name, string UserPrefix, string UserSuffix, string AssistantPrefix, string AssistantSuffix, string StopText)
{
    /// <summary>"Human:/Assistant:" transcripts, for base models and models tuned on HH-style data.</summary>
    public static ChatFormat Plain { get; } = new("plain", "Human: ", "\n\n", "Assistant: ", "\n\n", "\nHuman:");

    /// <summary>Llama-2-chat: [INST] … [/INST].</summary>
    public static ChatFormat Llama2 { get; } = new("llama2", "[INST] ", " [/INST]", " ", " ", "[INST]");

    /// <summary>ChatML (Qwen, many fine-tunes).</summary>
    public static ChatFormat ChatMl { get; } = new("chatml", "<|im_start|>user\n", "<|im_end|>\n", "<|im_start|>assistant\n", "<|im_end|>\n", "<|im_end|>");

    /// <summary>Zephyr / TinyLlama-chat.</summary>
    public static ChatFormat Zephyr { get; } = new("zephyr", "<|user|>\n", "</s>\n", "<|assistant|>\n", "</s>\n", "</s>");

    /// <summary>Llama-3-instruct.</summary>
    public static ChatFormat Llama3 { get; } = new(
        "llama3", "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", "<|eot_id|>");

    public static IReadOnlyList<ChatFormat> BuiltIn { get; } = [Plain, Llama2, ChatMl, Zephyr, Llama3];

    /// <summary>A built-in format by name (case-insensitive); bad input names the known ones.</summary>
    public static ChatFormat Named(string name)
    {
        foreach (var f in BuiltIn)
        {
            if (string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)) return f;
        }

        throw new InvalidInputException($"unknown chat format '{name}' (known: {string.Join(", ", BuiltIn.Select(f => f.Name))})");
    }

    /// <summary>The conversation followed by the start of the assistant's reply (the text a model continues).</summary>
    public string RenderPrompt(IReadOnlyList<ChatTurn> turns)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var t in turns)
        {
            if (t.Role == ChatRole.User) sb.Append(UserPrefix).Append(t.Text).Append(UserSuffix);
            else sb.Append(AssistantPrefix).Append(t.Text).Append(AssistantSuffix);
        }

        return sb.Append(AssistantPrefix).ToString();
    }

    /// <summary>A single user message as a prompt.</summary>
    public string RenderPrompt(string user) => RenderPrompt([new ChatTurn(ChatRole.User, user)]);

    /// <summary>A generated reply cut at <see cref="StopText"/> and trimmed.</summary>
    public string CleanReply(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        if (StopText.Length > 0)
        {
            int i = reply.IndexOf(StopText, StringComparison.Ordinal);
            if (i >= 0) reply = reply[..i];
        }

        return reply.Trim();
    }
}
