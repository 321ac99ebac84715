using Rlhf.IO;

namespace Rlhf.Sft;

/// <summary>A supervised example: the model learns to write <see cref="Response"/> after <see cref="Prompt"/>.</summary>
public sealed record SftExample(string Prompt, string Response);

/// <summary>Reads prompt/response JSONL ({"prompt", "response"} per line; other fields ignored).</summary>
public static class SftExamples
{
    public static List<SftExample> Load(string path)
    {
        var r = new List<SftExample>();
        foreach (var line in JsonLines.Read(path))
        {
            string prompt = line.RequireString("prompt"), response = line.RequireString("response");
            if (string.IsNullOrWhiteSpace(prompt)) throw line.Error("empty \"prompt\"");
            r.Add(new SftExample(prompt, response));
        }

        if (r.Count == 0) throw new InvalidInputException($"{path}: no examples");
        return r;
    }
}
