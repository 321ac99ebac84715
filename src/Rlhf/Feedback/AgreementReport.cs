using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Rlhf.Feedback;

/// <summary>How one labeler agrees with the others.</summary>
/// <param name="MeanTauB">Mean over prompts of Kendall's tau-b between this labeler's scores and the mean scores of the other labelers on the same prompt.</param>
/// <param name="Prompts">Prompts where the comparison was defined (another labeler ranked it and neither side was all ties).</param>
public sealed record LabelerAgreement(string Labeler, double MeanTauB, int Prompts, int Rankings, bool Flagged);

/// <summary>
/// Agreement between labelers: each labeler's Kendall tau-b against the leave-one-out consensus of the others,
/// averaged over prompts, and Krippendorff's ordinal alpha over all rankings. Labelers whose mean tau-b is
/// below <see cref="AgreementOptions.FlagBelow"/> are flagged — they may have misread the instructions.
/// </summary>
public sealed record AgreementReport(IReadOnlyList<LabelerAgreement> Labelers, double KrippendorffAlpha, int Prompts, double FlagBelow)
{
    public static AgreementReport Compute(IReadOnlyList<Ranking> rankings, AgreementOptions? options = null)
    {
        options ??= new AgreementOptions();
        var byPrompt = rankings.GroupBy(r => r.PromptId, StringComparer.Ordinal).ToList();
        var taus = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var units = new List<IReadOnlyList<double>>();
        foreach (var prompt in byPrompt)
        {
            var list = prompt.ToList();
            foreach (var ranking in list)
            {
                counts[ranking.Labeler] = counts.GetValueOrDefault(ranking.Labeler) + 1;
                taus.TryAdd(ranking.Labeler, []);
                var others = list.Where(r => r.Labeler != ranking.Labeler).ToList();
                if (others.Count == 0) continue;
                double tau = KendallTauB.Compute(ranking.Scores(), Consensus.Of(prompt.Key, others).MeanScores);
                if (!double.IsNaN(tau)) taus[ranking.Labeler].Add(tau);
            }

            int n = list[0].Ranks.Length;
            for (int i = 0; i < n; i++)
            {
                units.Add(list.Select(r => r.Ranks[i].Score(n)).ToList());
            }
        }

        var labelers = taus.Keys.Order(StringComparer.Ordinal).Select(name =>
        {
            var t = taus[name];
            double mean = t.Count == 0 ? double.NaN : t.Average();
            return new LabelerAgreement(name, mean, t.Count, counts[name], !double.IsNaN(mean) && mean < options.FlagBelow);
        }).ToList();
        return new AgreementReport(labelers, Feedback.KrippendorffAlpha.Ordinal(units), byPrompt.Count, options.FlagBelow);
    }

    public IEnumerable<string> FlaggedLabelers => Labelers.Where(l => l.Flagged).Select(l => l.Labeler);

    public string ToTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| labeler | rankings | prompts compared | mean tau-b vs others | flagged |");
        sb.AppendLine("| --- | ---: | ---: | ---: | --- |");
        foreach (var l in Labelers)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {l.Labeler} | {l.Rankings} | {l.Prompts} | {(double.IsNaN(l.MeanTauB) ? "n/a" : l.MeanTauB.ToString("F3", CultureInfo.InvariantCulture))} | {(l.Flagged ? "yes" : "")} |"));
        }

        sb.AppendLine();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Krippendorff's alpha (ordinal) over {Prompts} prompt(s): {KrippendorffAlpha:F3}; flag threshold: tau-b < {FlagBelow:F2}"));
        return sb.ToString();
    }

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("prompts", Prompts);
            WriteNumberOrNull(w, "krippendorff_alpha_ordinal", KrippendorffAlpha);
            w.WriteNumber("flag_below", FlagBelow);
            w.WriteStartArray("labelers");
            foreach (var l in Labelers)
            {
                w.WriteStartObject();
                w.WriteString("labeler", l.Labeler);
                w.WriteNumber("rankings", l.Rankings);
                w.WriteNumber("prompts_compared", l.Prompts);
                WriteNumberOrNull(w, "mean_tau_b", l.MeanTauB);
                w.WriteBoolean("flagged", l.Flagged);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsNaN(value)) w.WriteNull(name);
        else w.WriteNumber(name, value);
    }
}

/// <summary>Options of the agreement report.</summary>
/// <param name="FlagBelow">Labelers whose mean tau-b against the others is below this are flagged (default 0.2: little better than chance).</param>
public sealed record AgreementOptions(double FlagBelow = 0.2);
