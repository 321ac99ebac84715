using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Feedback;

public sealed record Completion(string Id, string Text);

/// <summary>
/// One prompt with the completions labelers see, in the order they are shown (already shuffled per row by
/// generate-completions; the hidden permutation stays in the file, not here).
/// </summary>
public sealed record CompletionSet(string PromptId, string Prompt, IReadOnlyList<Completion> Completions)
{
    public int IndexOf(string completionId)
    {
        for (int i = 0; i < Completions.Count; i++)
        {
            if (Completions[i].Id == completionId) return i;
        }

        return -1;
    }
}

/// <summary>Reads completions.jsonl: {"prompt_id", "prompt", "completions": [{"id", "text"}, ...], ...}.</summary>
public static class CompletionSets
{
    public static Dictionary<string, CompletionSet> Load(string path)
    {
        var result = new Dictionary<string, CompletionSet>(StringComparer.Ordinal);
        foreach (var line in JsonLines.Read(path))
        {
            var set = Parse(line);
            if (!result.TryAdd(set.PromptId, set))
            {
                throw line.Error($"duplicate prompt_id \"{set.PromptId}\"");
            }
        }

        return result;
    }

    public static CompletionSet Parse(JsonLine line)
    {
        string promptId = line.RequireString("prompt_id");
        string prompt = line.RequireString("prompt");
        if (!line.TryGet("completions", out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw line.Error("missing array property \"completions\"");
        }

        var completions = new List<Completion>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object
                || !item.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String
                || !item.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            {
                throw line.Error($"completion {completions.Count} of prompt \"{promptId}\" needs string \"id\" and \"text\"");
            }

            if (!ids.Add(id.GetString()!))
            {
                throw line.Error($"duplicate completion id \"{id.GetString()}\" in prompt \"{promptId}\"");
            }

            completions.Add(new Completion(id.GetString()!, text.GetString()!));
        }

        if (completions.Count < 2)
        {
            throw line.Error($"prompt \"{promptId}\" has {completions.Count} completion(s); ranking needs at least 2");
        }

        return new CompletionSet(promptId, prompt, completions);
    }
}
