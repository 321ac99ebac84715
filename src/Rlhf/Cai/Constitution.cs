using System.Text.Json;
using Rlhf.IO;

namespace Rlhf.Cai;

/// <summary>A principle for the supervised stage: what to critique, and how to revise.</summary>
public sealed record CritiquePrinciple(string Name, string CritiqueRequest, string RevisionRequest);

/// <summary>A principle for labelling preferences: the multiple-choice question asked about two replies.</summary>
public sealed record ComparisonPrinciple(string Name, string Question);

/// <summary>A worked critique–revision example shown to the model before the real request.</summary>
public sealed record FewShotExample(string Prompt, string Response, string CritiqueRequest, string Critique, string RevisionRequest, string Revision);

/// <summary>The prompt templates of a constitution, validated at load.</summary>
/// <param name="Critique">Placeholders {prompt}, {response}, {critique_request}.</param>
/// <param name="Revision">Placeholders {prompt}, {response}, {critique_request}, {critique}, {revision_request}.</param>
/// <param name="Comparison">Placeholders {prompt}, {question}, {option_a}, {option_b}, {label_a}, {label_b}.</param>
/// <param name="AnswerPrefix">Start of the feedback model's answer; the option labels are scored right after it.</param>
public sealed record CaiTemplates(PromptTemplate Critique, PromptTemplate Revision, PromptTemplate Comparison, string AnswerPrefix);

/// <summary>
/// A constitution: critique/revision principles, comparison principles, optional few-shot examples, templates, the
/// option labels of the comparison question and the chat format. JSON; see default-constitution.json (embedded).
/// </summary>
public sealed record Constitution(
    string Name,
    IReadOnlyList<CritiquePrinciple> Principles,
    IReadOnlyList<ComparisonPrinciple> ComparisonPrinciples,
    IReadOnlyList<FewShotExample> FewShot,
    CaiTemplates Templates,
    string LabelA,
    string LabelB,
    ChatFormat ChatFormat)
{
    public const string DefaultResourceName = "Rlhf.Cai.default-constitution.json";

    public static readonly string[] CritiquePlaceholders = ["prompt", "response", "critique_request"];
    public static readonly string[] RevisionPlaceholders = ["prompt", "response", "critique_request", "critique", "revision_request"];
    public static readonly string[] ComparisonPlaceholders = ["prompt", "question", "option_a", "option_b", "label_a", "label_b"];

    private static readonly Lazy<Constitution> DefaultValue = new(() => Parse(DefaultJson(), "default constitution"));

    /// <summary>The constitution shipped with rlhf.</summary>
    public static Constitution Default => DefaultValue.Value;

    /// <summary>The shipped constitution's JSON text (a starting point for your own).</summary>
    public static string DefaultJson()
    {
        using var s = typeof(Constitution).Assembly.GetManifestResourceStream(DefaultResourceName)
            ?? throw new InvalidOperationException($"embedded resource {DefaultResourceName} missing");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>Reads and validates a constitution file (errors name the file and the field).</summary>
    public static Constitution Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: constitution file not found");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>
    /// Parses constitution JSON. Templates, option labels and chat format may be omitted (the default constitution's
    /// are used); principles and comparison principles are required and none may be empty.
    /// </summary>
    public static Constitution Parse(string json, string source)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{source}: not valid JSON ({e.Message})");
        }

        if (root.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{source}: expected a JSON object");
        Constitution? fallback = source == "default constitution" ? null : Default;

        string name = OptionalString(root, "name", source, "name") ?? Path.GetFileNameWithoutExtension(source);
        var principles = new List<CritiquePrinciple>();
        var plain = Array.Empty<string>();
        foreach (var (e, field) in RequiredArray(root, "principles", source))
        {
            string pname = OptionalString(e, "name", source, field + ".name") ?? $"principle{principles.Count}";
            string critique = RequiredText(e, "critique_request", source, field, plain);
            string revision = RequiredText(e, "revision_request", source, field, plain);
            principles.Add(new CritiquePrinciple(pname, critique, revision));
        }

        var comparisons = new List<ComparisonPrinciple>();
        foreach (var (e, field) in RequiredArray(root, "comparison_principles", source))
        {
            string pname = OptionalString(e, "name", source, field + ".name") ?? $"comparison{comparisons.Count}";
            comparisons.Add(new ComparisonPrinciple(pname, RequiredText(e, "question", source, field, plain)));
        }

        var shots = new List<FewShotExample>();
        if (root.TryGetProperty("few_shot", out var fs) && fs.ValueKind != JsonValueKind.Null)
        {
            if (fs.ValueKind != JsonValueKind.Array) throw new InvalidInputException($"{source}: few_shot must be an array");
            int i = 0;
            foreach (var e in fs.EnumerateArray())
            {
                string field = $"few_shot[{i++}]";
                if (e.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{source}: {field} must be an object");
                shots.Add(new FewShotExample(
                    RequiredText(e, "prompt", source, field, null), RequiredText(e, "response", source, field, null),
                    RequiredText(e, "critique_request", source, field, null), RequiredText(e, "critique", source, field, null),
                    RequiredText(e, "revision_request", source, field, null), RequiredText(e, "revision", source, field, null)));
            }
        }

        CaiTemplates templates;
        if (root.TryGetProperty("templates", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{source}: templates must be an object");
            var d = fallback?.Templates;
            templates = new CaiTemplates(
                Template(t, "critique", CritiquePlaceholders, ["response", "critique_request"], source, d?.Critique),
                Template(t, "revision", RevisionPlaceholders, ["response", "revision_request"], source, d?.Revision),
                Template(t, "comparison", ComparisonPlaceholders, ["question", "option_a", "option_b"], source, d?.Comparison),
                OptionalString(t, "answer_prefix", source, "templates.answer_prefix") ?? d?.AnswerPrefix ?? "");
        }
        else
        {
            templates = fallback?.Templates ?? throw new InvalidInputException($"{source}: templates missing");
        }

        string labelA = fallback?.LabelA ?? "(A)", labelB = fallback?.LabelB ?? "(B)";
        if (root.TryGetProperty("option_labels", out var ol) && ol.ValueKind != JsonValueKind.Null)
        {
            if (ol.ValueKind != JsonValueKind.Array || ol.GetArrayLength() != 2 || ol[0].ValueKind != JsonValueKind.String || ol[1].ValueKind != JsonValueKind.String)
            {
                throw new InvalidInputException($"{source}: option_labels must be an array of two strings, e.g. [\"(A)\", \"(B)\"]");
            }

            labelA = ol[0].GetString()!;
            labelB = ol[1].GetString()!;
            if (string.IsNullOrWhiteSpace(labelA) || string.IsNullOrWhiteSpace(labelB) || labelA == labelB)
            {
                throw new InvalidInputException($"{source}: option_labels must be two different non-empty strings");
            }
        }

        var chat = fallback?.ChatFormat ?? ChatFormat.Plain;
        if (root.TryGetProperty("chat_format", out var cf) && cf.ValueKind != JsonValueKind.Null) chat = ParseChatFormat(cf, source);

        return new Constitution(name, principles, comparisons, shots, templates, labelA, labelB, chat);
    }

    /// <summary>A chat format: a built-in name, or an object {name, user_prefix, user_suffix, assistant_prefix, assistant_suffix, stop}.</summary>
    public static ChatFormat ParseChatFormat(JsonElement e, string source)
    {
        if (e.ValueKind == JsonValueKind.String)
        {
            try
            {
                return ChatFormat.Named(e.GetString()!);
            }
            catch (InvalidInputException x)
            {
                throw new InvalidInputException($"{source}: chat_format: {x.Message}");
            }
        }

        if (e.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{source}: chat_format must be a name or an object");
        string S(string p) => e.TryGetProperty(p, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw new InvalidInputException($"{source}: chat_format.{p} missing (a string)");
        return new ChatFormat(
            e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "custom",
            S("user_prefix"), S("user_suffix"), S("assistant_prefix"), S("assistant_suffix"),
            e.TryGetProperty("stop", out var st) && st.ValueKind == JsonValueKind.String ? st.GetString()! : "");
    }

    private static PromptTemplate Template(JsonElement t, string field, string[] allowed, string[] required, string source, PromptTemplate? fallback)
    {
        if (!t.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return fallback ?? throw new InvalidInputException($"{source}: templates.{field} missing");
        }

        if (v.ValueKind != JsonValueKind.String) throw new InvalidInputException($"{source}: templates.{field} must be a string");
        return PromptTemplate.Parse(v.GetString(), allowed, required, source, "templates." + field);
    }

    private static IEnumerable<(JsonElement, string)> RequiredArray(JsonElement root, string name, string source)
    {
        if (!root.TryGetProperty(name, out var a) || a.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidInputException($"{source}: {name} missing (an array)");
        }

        if (a.GetArrayLength() == 0) throw new InvalidInputException($"{source}: {name} is empty");
        int i = 0;
        foreach (var e in a.EnumerateArray())
        {
            string field = $"{name}[{i++}]";
            if (e.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{source}: {field} must be an object");
            yield return (e, field);
        }
    }

    // Principle texts are checked as templates with no placeholders, so a stray {name} meant for a template is caught.
    private static string RequiredText(JsonElement e, string property, string source, string field, string[]? asTemplate)
    {
        if (!e.TryGetProperty(property, out var v) || v.ValueKind != JsonValueKind.String)
        {
            throw new InvalidInputException($"{source}: {field}.{property} missing (a string)");
        }

        string s = v.GetString()!;
        if (string.IsNullOrWhiteSpace(s)) throw new InvalidInputException($"{source}: {field}.{property} is empty");
        return asTemplate is null ? s : PromptTemplate.Parse(s, asTemplate, [], source, $"{field}.{property}").Render(new Dictionary<string, string>());
    }

    private static string? OptionalString(JsonElement e, string property, string source, string field)
    {
        if (!e.TryGetProperty(property, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw new InvalidInputException($"{source}: {field} must be a string");
        return v.GetString();
    }
}
