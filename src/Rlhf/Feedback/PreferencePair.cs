using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Feedback;

/// <summary>One comparison for reward training: <see cref="Chosen"/> was preferred over <see cref="Rejected"/>.</summary>
/// <param name="Margin">How clearly: the difference of the two scores (ranks, or mean ranks for the consensus).</param>
/// <param name="Preference">Probability that <see cref="Chosen"/> is better (soft label, e.g. from an AI labeler); 1 = certain.</param>
public sealed record PreferencePair(
    string PromptId, string Prompt, string ChosenId, string Chosen, string RejectedId, string Rejected, string Labeler, double Margin,
    double Preference = 1);

/// <summary>
/// pairs.jsonl: {"prompt_id", "prompt", "chosen", "rejected", "chosen_id", "rejected_id", "labeler", "margin"} and an
/// optional "preference" in [0, 1] (written only when it is not 1).
/// </summary>
public static class PreferencePairs
{
    public static void Write(string path, IEnumerable<PreferencePair> pairs, bool overwrite = true) =>
        JsonLines.Write(path, pairs, static (w, p) =>
        {
            w.WriteStartObject();
            WriteFields(w, p);
            w.WriteEndObject();
        }, overwrite);

    /// <summary>One pair's fields, inside an object the caller opened (so a richer format can add its own).</summary>
    public static void WriteFields(Utf8JsonWriter w, PreferencePair p)
    {
        w.WriteString("prompt_id", p.PromptId);
        w.WriteString("prompt", p.Prompt);
        w.WriteString("chosen", p.Chosen);
        w.WriteString("rejected", p.Rejected);
        w.WriteString("chosen_id", p.ChosenId);
        w.WriteString("rejected_id", p.RejectedId);
        w.WriteString("labeler", p.Labeler);
        w.WriteNumber("margin", p.Margin);
        if (p.Preference != 1) w.WriteNumber("preference", p.Preference);
    }

    public static List<PreferencePair> Read(string path)
    {
        var result = new List<PreferencePair>();
        foreach (var line in JsonLines.Read(path))
        {
            double margin = 0;
            // null counts as absent (as if written by a tool without margins).
            if (line.TryGet("margin", out var m) && m.ValueKind != JsonValueKind.Null)
            {
                // Training uses the margin as a float: one beyond its range (or a quoted "NaN") would poison the loss.
                if (m.ValueKind != JsonValueKind.Number || !m.TryGetDouble(out margin) || !float.IsFinite((float)margin))
                {
                    throw line.Error($"\"margin\" must be a finite number (within ±3.4e38), found {m.GetRawText()}");
                }
            }

            double preference = 1;
            if (line.TryGet("preference", out var pref))
            {
                if (pref.ValueKind != JsonValueKind.Number || !pref.TryGetDouble(out preference) || !(preference >= 0 && preference <= 1))
                {
                    throw line.Error($"\"preference\" must be a number in [0, 1], found {pref.GetRawText()}");
                }
            }

            result.Add(new PreferencePair(
                line.TryGet("prompt_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()! : $"line{line.Line}",
                line.RequireString("prompt"), OptionalString(line, "chosen_id"), line.RequireString("chosen"),
                OptionalString(line, "rejected_id"), line.RequireString("rejected"), OptionalString(line, "labeler"), margin, preference));
        }

        return result;
    }

    private static string OptionalString(JsonLine line, string name) =>
        line.TryGet(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
}
