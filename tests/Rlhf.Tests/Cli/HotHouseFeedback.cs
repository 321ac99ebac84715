namespace Rlhf.Tests.Cli;

/// <summary>One prompt with three completions and three labelers' rankings (l3 disagrees), as CLI inputs.</summary>
internal static class HotHouseFeedback
{
    /// <summary>Writes completions.jsonl and labels.csv into <paramref name="dir"/>.</summary>
    public static void Write(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "completions.jsonl"),
            """{"prompt_id": "hot", "prompt": "My house is too hot.", "completions": [{"id": "a", "text": "There is nothing you can do about hot houses."}, {"id": "b", "text": "You can cool your house with air conditioning."}, {"id": "c", "text": "It is not too hot."}]}""" + "\n");
        File.WriteAllLines(Path.Combine(dir, "labels.csv"),
        [
            "labeler,prompt_id,completion_id,rank",
            "l1,hot,a,2", "l1,hot,b,1", "l1,hot,c,3",
            "l2,hot,a,2", "l2,hot,b,1", "l2,hot,c,3",
            "l3,hot,a,1", "l3,hot,b,3", "l3,hot,c,2",
        ]);
    }
}
