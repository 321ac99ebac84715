using System.Globalization;
using System.Text.Json;
using Rlhf.Feedback;

namespace Rlhf.Labeling;

/// <summary>Server-side validation of a submitted ranking and the compact text form rankings are stored in.</summary>
public static class RankInput
{
    /// <summary>
    /// Parses <c>[2, 1, "F"]</c>: one entry per completion in the shown order, each an integer 1..n (ties allowed)
    /// or "F". Anything else is a 400 naming the position and the value.
    /// </summary>
    public static Rank[] Parse(JsonElement ranks, int completionCount)
    {
        if (ranks.ValueKind != JsonValueKind.Array) throw LabelingException.BadRequest("\"ranks\" must be an array with one rank (1..n or \"F\") per completion");
        int length = ranks.GetArrayLength();
        if (length != completionCount)
        {
            throw LabelingException.BadRequest($"\"ranks\" has {length} entries; this item has {completionCount} completions");
        }

        var result = new Rank[completionCount];
        int i = 0;
        foreach (var entry in ranks.EnumerateArray())
        {
            string raw = entry.ValueKind switch
            {
                JsonValueKind.Number => entry.GetRawText(),
                JsonValueKind.String => entry.GetString()!.Trim(),
                _ => "",
            };
            result[i] = ParseOne(raw, i, completionCount);
            i++;
        }

        return result;
    }

    public static Rank ParseOne(string raw, int position, int completionCount)
    {
        if (raw is "F" or "f") return Rank.Failed;
        if (int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= 1 && value <= completionCount)
        {
            return Rank.Of(value);
        }

        string shown = raw.Length > 20 ? raw[..20] + "…" : raw;
        throw LabelingException.BadRequest($"ranks[{position}] = \"{shown}\" is not a rank; expected an integer 1..{completionCount} or \"F\"");
    }

    public static string Format(Rank[] ranks) => string.Join(',', ranks.Select(r => r.ToString()));

    public static Rank[] FromStored(string stored) =>
        stored.Split(',').Select(s => s == "F" ? Rank.Failed : Rank.Of(int.Parse(s, CultureInfo.InvariantCulture))).ToArray();
}
