using Rlhf.Cai;
using Rlhf.IO;

namespace Rlhf.Tests.Cai;

public class PromptTemplateTests
{
    private static readonly string[] Allowed = ["prompt", "response"];

    [Test]
    public void Render_ReplacesEveryPlaceholder_AndUnescapesBraces()
    {
        var t = PromptTemplate.Parse("Q: {prompt} | A: {response} | again {prompt} | {{literal}}", Allowed, ["response"], "f.json", "templates.x");
        Assert.That(t.Placeholders, Is.EqualTo(new[] { "prompt", "response", "prompt" }));
        string text = t.Render(new Dictionary<string, string> { ["prompt"] = "hi {there}", ["response"] = "yo" });
        Assert.That(text, Is.EqualTo("Q: hi {there} | A: yo | again hi {there} | {literal}"));
    }

    [TestCase("say {respnse}", "f.json: templates.x: unknown placeholder {respnse}")]
    [TestCase("say {prompt}", "f.json: templates.x: missing required placeholder {response}")]
    [TestCase("say {response", "f.json: templates.x: unclosed '{'")]
    [TestCase("say response}", "f.json: templates.x: stray '}'")]
    [TestCase("  ", "f.json: templates.x is empty")]
    public void Parse_BadTemplate_NamesFileAndField(string text, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => PromptTemplate.Parse(text, Allowed, ["response"], "f.json", "templates.x"));
        Assert.That(e!.Message, Does.StartWith(expected));
    }

    [Test]
    public void Render_MissingValue_Throws()
    {
        var t = PromptTemplate.Parse("{prompt}{response}", Allowed, [], "f", "x");
        Assert.Throws<ArgumentException>(() => t.Render(new Dictionary<string, string> { ["prompt"] = "p" }));
    }
}

public class ConstitutionTests
{
    [Test]
    public void Default_LoadsWithPrinciplesTemplatesAndFewShot()
    {
        var c = Constitution.Default;
        Assert.That(c.Principles, Has.Count.EqualTo(8));
        Assert.That(c.ComparisonPrinciples, Has.Count.EqualTo(7));
        Assert.That(c.FewShot, Has.Count.EqualTo(1));
        Assert.That(c.Principles.Select(p => p.Name), Is.Unique);
        Assert.That((c.LabelA, c.LabelB), Is.EqualTo(("(A)", "(B)")));
        Assert.That(c.ChatFormat, Is.EqualTo(ChatFormat.Plain));
    }

    [Test]
    public void CustomFile_InheritsDefaultTemplates_AndReadsChatFormatObject()
    {
        var c = Constitution.Parse("""
            { "principles": [ { "name": "p", "critique_request": "Is it rude?", "revision_request": "Make it polite." } ],
              "comparison_principles": [ { "question": "Which is kinder?" } ],
              "templates": { "answer_prefix": "Answer:" },
              "option_labels": ["1", "2"],
              "chat_format": { "user_prefix": "<u>", "user_suffix": "</u>", "assistant_prefix": "<a>", "assistant_suffix": "</a>", "stop": "<u>" } }
            """, "mine.json");
        Assert.That(c.Templates.Critique, Is.SameAs(Constitution.Default.Templates.Critique));
        Assert.That(c.Templates.AnswerPrefix, Is.EqualTo("Answer:"));
        Assert.That(c.ComparisonPrinciples[0].Name, Is.EqualTo("comparison0"));
        Assert.That(c.ChatFormat.RenderPrompt([new ChatTurn(ChatRole.User, "q"), new ChatTurn(ChatRole.Assistant, "a"), new ChatTurn(ChatRole.User, "q2")]),
            Is.EqualTo("<u>q</u><a>a</a><u>q2</u><a>"));
        Assert.That(c.ChatFormat.CleanReply(" fine <u>next"), Is.EqualTo("fine"));
    }

    private const string Ok = """{ "critique_request": "c", "revision_request": "r" }""";

    [TestCase("""{ "principles": [ OK, { "critique_request": "", "revision_request": "r" } ], "comparison_principles": [ { "question": "q" } ] }""",
        "c.json: principles[1].critique_request is empty")]
    [TestCase("""{ "principles": [ { "critique_request": "c" } ], "comparison_principles": [ { "question": "q" } ] }""",
        "c.json: principles[0].revision_request missing")]
    [TestCase("""{ "principles": [], "comparison_principles": [ { "question": "q" } ] }""", "c.json: principles is empty")]
    [TestCase("""{ "principles": [ OK ] }""", "c.json: comparison_principles missing")]
    [TestCase("""{ "principles": [ OK ], "comparison_principles": [ { "question": " " } ] }""", "c.json: comparison_principles[0].question is empty")]
    [TestCase("""{ "principles": [ { "critique_request": "c {response}", "revision_request": "r" } ], "comparison_principles": [ { "question": "q" } ] }""",
        "c.json: principles[0].critique_request: unknown placeholder {response}")]
    [TestCase("""{ "principles": [ OK ], "comparison_principles": [ { "question": "q" } ], "templates": { "critique": "{prompt} {response} {critique_request} {mood}" } }""",
        "c.json: templates.critique: unknown placeholder {mood}")]
    [TestCase("""{ "principles": [ OK ], "comparison_principles": [ { "question": "q" } ], "templates": { "comparison": "{question} {option_a}" } }""",
        "c.json: templates.comparison: missing required placeholder {option_b}")]
    [TestCase("""{ "principles": [ OK ], "comparison_principles": [ { "question": "q" } ], "option_labels": ["(A)", "(A)"] }""",
        "c.json: option_labels must be two different")]
    [TestCase("""{ "principles": [ OK ], "comparison_principles": [ { "question": "q" } ], "chat_format": "vicuna" }""",
        "c.json: chat_format: unknown chat format 'vicuna'")]
    [TestCase("""{ "principles": [ OK ], "comparison_principles": [ { "question": "q" } ], "few_shot": [ { "prompt": "p" } ] }""",
        "c.json: few_shot[0].response missing")]
    [TestCase("""{ "principles": [ OK, """, "c.json: not valid JSON")]
    public void Parse_BadConstitution_NamesFileAndField(string json, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => Constitution.Parse(json.Replace("OK", Ok), "c.json"));
        Assert.That(e!.Message, Does.StartWith(expected));
    }

    [Test]
    public void Load_MissingFile_IsBadInput()
    {
        var e = Assert.Throws<InvalidInputException>(() => Constitution.Load("/nonexistent/c.json"));
        Assert.That(e!.Message, Does.Contain("/nonexistent/c.json"));
    }

    [Test]
    public void CritiqueAndRevisionPrompts_RenderFewShotTurnsThenTheRequest()
    {
        var c = Constitution.Default;
        var reviser = new CritiqueReviser(new ScriptedModel(), c);
        var p = c.Principles[2];
        string critique = reviser.CritiquePrompt("REQ", "RESP", p);
        var shot = c.FewShot[0];
        string expected = "Human: " + c.Templates.Critique.Render(new Dictionary<string, string> { ["prompt"] = shot.Prompt, ["response"] = shot.Response, ["critique_request"] = shot.CritiqueRequest })
            + "\n\nAssistant: " + shot.Critique + "\n\nHuman: "
            + c.Templates.Critique.Render(new Dictionary<string, string> { ["prompt"] = "REQ", ["response"] = "RESP", ["critique_request"] = p.CritiqueRequest })
            + "\n\nAssistant: ";
        Assert.That(critique, Is.EqualTo(expected));
        string revision = reviser.RevisionPrompt("REQ", "RESP", p, "CRIT");
        Assert.That(revision, Does.EndWith("Critique: CRIT\n\n" + p.RevisionRequest + " Answer with the new reply only.\n\nAssistant: "));
        Assert.That(revision, Does.Contain(shot.Revision));
    }
}
