using System.Text;
using Rlhf.IO;

namespace Rlhf.Cai;

/// <summary>
/// Text with <c>{name}</c> placeholders; <c>{{</c> and <c>}}</c> stand for literal braces. Parsed once and checked
/// against the placeholders its use allows, so a typo fails at load time, not halfway through a run.
/// </summary>
public sealed class PromptTemplate
{
    private readonly string[] literals;
    private readonly string[] names;

    private PromptTemplate(string text, string[] literals, string[] names)
    {
        Text = text;
        this.literals = literals;
        this.names = names;
    }

    /// <summary>The template as written.</summary>
    public string Text { get; }

    /// <summary>The placeholders used, in order of appearance (repeats included).</summary>
    public IReadOnlyList<string> Placeholders => names;

    /// <summary>
    /// Parses <paramref name="text"/>. Throws <see cref="InvalidInputException"/> naming <paramref name="source"/> and
    /// <paramref name="field"/> for an empty template, an unknown placeholder, an unclosed brace or a missing
    /// required placeholder.
    /// </summary>
    public static PromptTemplate Parse(string? text, IReadOnlyCollection<string> allowed, IReadOnlyCollection<string> required, string source, string field)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new InvalidInputException($"{source}: {field} is empty");
        var lits = new List<string>();
        var found = new List<string>();
        var current = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '{' && i + 1 < text.Length && text[i + 1] == '{')
            {
                current.Append('{');
                i++;
            }
            else if (c == '}' && i + 1 < text.Length && text[i + 1] == '}')
            {
                current.Append('}');
                i++;
            }
            else if (c == '{')
            {
                int end = text.IndexOf('}', i + 1);
                if (end < 0) throw new InvalidInputException($"{source}: {field}: unclosed '{{' at character {i} (write {{{{ for a literal brace)");
                string name = text[(i + 1)..end];
                if (!Contains(allowed, name))
                {
                    throw new InvalidInputException($"{source}: {field}: unknown placeholder {{{name}}} (allowed: {Describe(allowed)})");
                }

                lits.Add(current.ToString());
                current.Clear();
                found.Add(name);
                i = end;
            }
            else if (c == '}')
            {
                throw new InvalidInputException($"{source}: {field}: stray '}}' at character {i} (write }}}} for a literal brace)");
            }
            else
            {
                current.Append(c);
            }
        }

        lits.Add(current.ToString());
        foreach (var r in required)
        {
            if (!found.Contains(r)) throw new InvalidInputException($"{source}: {field}: missing required placeholder {{{r}}}");
        }

        return new PromptTemplate(text, [.. lits], [.. found]);
    }

    /// <summary>The text with each placeholder replaced by its value; a value the template uses must be supplied.</summary>
    public string Render(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sb = new StringBuilder(literals[0]);
        for (int i = 0; i < names.Length; i++)
        {
            if (!values.TryGetValue(names[i], out var v)) throw new ArgumentException($"no value for placeholder {{{names[i]}}}", nameof(values));
            sb.Append(v).Append(literals[i + 1]);
        }

        return sb.ToString();
    }

    private static bool Contains(IReadOnlyCollection<string> set, string name)
    {
        foreach (var s in set)
        {
            if (s == name) return true;
        }

        return false;
    }

    private static string Describe(IReadOnlyCollection<string> set) => set.Count == 0 ? "none" : "{" + string.Join("}, {", set) + "}";
}
