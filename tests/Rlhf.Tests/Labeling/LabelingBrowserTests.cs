using Microsoft.Playwright;
using Rlhf.Feedback;
using Rlhf.Labeling;
using Rlhf.Tests.Cli;
using Rlhf.Tests.Feedback;
using static Microsoft.Playwright.Assertions;

namespace Rlhf.Tests.Labeling;

/// <summary>The pages in a real headless browser against the running app.</summary>
public class LabelingBrowserTests
{
    private BrowserSession browser = null!;

    [OneTimeSetUp]
    public async Task LaunchBrowser() => browser = await BrowserSession.Launch();

    [OneTimeTearDown]
    public async Task CloseBrowser() => await browser.DisposeAsync();

    [Test]
    public async Task TutorialExample_RankedThroughThePage_FlagsTheThirdLabeler_AndTheExportGivesTheTutorialsPairs()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3, "labeler1", "labeler2", "labeler3");
        await using var server = await LabelingServer.StartAsync(project.Store, "http://127.0.0.1:0");
        string baseUrl = server.Addresses[0];

        // labeler1 uses the rank menus.
        var l1 = await browser.Open(LabelingLinks.Labeler(baseUrl, project.Tokens["labeler1"]));
        Assert.That(l1.Url, Does.Not.Contain(project.Tokens["labeler1"]), "the token leaves the address bar");
        await Expect(l1.Locator("#instructions-text")).ToContainTextAsync("How to rank completions");
        await l1.ClickAsync("#start");
        await Expect(l1.Locator("#prompt")).ToHaveTextAsync("My house is too hot.");
        await Expect(l1.Locator(".completion-text")).ToHaveTextAsync(TutorialExample.Set.Completions.Select(c => c.Text).ToArray());
        await RankWithMenus(l1, "2", "1", "3");
        await l1.ClickAsync("#submit");
        await Expect(l1.Locator("#done")).ToBeVisibleAsync();

        // labeler1 goes back, changes the answer, then changes it back: the item stays one ranking.
        await l1.ClickAsync("#review");
        await Expect(l1.Locator("select.rank").Nth(0)).ToHaveValueAsync("2");
        await RankWithMenus(l1, "3", "1", "2");
        await l1.ClickAsync("#submit");
        await Expect(l1.Locator("#done")).ToBeVisibleAsync();
        await l1.ClickAsync("#review");
        await RankWithMenus(l1, "2", "1", "3");
        await l1.ClickAsync("#submit");
        await Expect(l1.Locator("#done")).ToBeVisibleAsync();

        // labeler2 double-clicks submit.
        var l2 = await browser.Open(LabelingLinks.Labeler(baseUrl, project.Tokens["labeler2"]));
        await l2.ClickAsync("#start");
        await RankWithMenus(l2, "2", "1", "3");
        await l2.Locator("#submit").DblClickAsync();
        await Expect(l2.Locator("#done")).ToBeVisibleAsync();

        // labeler3 is on a phone and uses the keyboard (digits rank the highlighted completion, Enter submits).
        var l3 = await browser.Open(LabelingLinks.Labeler(baseUrl, project.Tokens["labeler3"]), width: 390, height: 844);
        await l3.ClickAsync("#start");
        await Expect(l3.Locator("#prompt")).ToHaveTextAsync("My house is too hot.");
        Assert.That(await l3.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), Is.True, "no sideways scrolling on a phone");
        foreach (string key in new[] { "1", "3", "2", "Enter" }) await l3.Keyboard.PressAsync(key);
        await Expect(l3.Locator("#done")).ToBeVisibleAsync();

        var stored = project.Store.Snapshot().Rankings;
        Assert.That(stored.Select(r => (r.Labeler, string.Join(",", r.Ranks))),
            Is.EqualTo(TutorialExample.Rankings.Select(r => (r.Labeler, string.Join(",", r.Ranks)))));
        var l1Id = project.Store.FindLabeler(project.Tokens["labeler1"])!.Id;
        Assert.That(project.Store.GetItem(l1Id, project.Store.Assignments(l1Id).Single().ItemId).Revision, Is.EqualTo(3), "ranked, changed, changed back");

        // The organiser sees labeler3 flagged and exports.
        var organiser = await browser.Open(LabelingLinks.Organiser(baseUrl, project.OrganiserToken));
        await Expect(organiser.Locator("#agreement tr[data-labeler='labeler3'] td.flag")).ToHaveTextAsync("yes");
        await Expect(organiser.Locator("#agreement tr[data-labeler='labeler1'] td.flag")).ToHaveTextAsync("");
        await Expect(organiser.Locator("#agreement tr[data-labeler='labeler2'] td.flag")).ToHaveTextAsync("");
        await Expect(organiser.Locator("#labelers tr[data-labeler='labeler3'] td").Nth(2)).ToHaveTextAsync("1");
        var download = await organiser.RunAndWaitForDownloadAsync(() => organiser.ClickAsync("#export"));
        string exported = Path.Combine(project.Folder, "exported.jsonl");
        await download.SaveAsAsync(exported);

        string completions = Path.Combine(project.Folder, "completions.jsonl");
        File.WriteAllText(completions, """{"prompt_id": "hot", "prompt": "My house is too hot.", "completions": [{"id": "a", "text": "There is nothing you can do about hot houses."}, {"id": "b", "text": "You can cool your house with air conditioning."}, {"id": "c", "text": "It is not too hot."}]}""" + "\n");
        var pairs = CliRunner.Run(project.Folder, "pairs", "--completions", "completions.jsonl", "--rankings", "exported.jsonl", "--out", "pairs.jsonl");
        Assert.That(pairs.ExitCode, Is.EqualTo(0), pairs.Stderr);
        var expected = TutorialExample.Rankings.SelectMany(r => PairBuilder.FromRanking(TutorialExample.Set, r)).ToList();
        var actual = PreferencePairs.Read(Path.Combine(project.Folder, "pairs.jsonl"));
        Assert.That(actual.Select(p => (p.PromptId, p.ChosenId, p.RejectedId, p.Labeler, p.Margin, p.Chosen, p.Rejected)),
            Is.EqualTo(expected.Select(p => (p.PromptId, p.ChosenId, p.RejectedId, p.Labeler, p.Margin, p.Chosen, p.Rejected))));
        Assert.That(actual, Has.Count.EqualTo(9));

        // The command line export writes the same file the organiser downloaded.
        var cli = CliRunner.Run(project.Folder, "label", "export", "--db", project.DatabasePath, "--out", "cli.jsonl");
        Assert.That(cli.ExitCode, Is.EqualTo(0), cli.Stderr);
        Assert.That(File.ReadAllText(Path.Combine(project.Folder, "cli.jsonl")), Is.EqualTo(File.ReadAllText(exported)));
    }

    [Test]
    public async Task MarkupInCompletions_IsShownAsText_SkipBackAndThumbsWork()
    {
        const string hostile = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
        var sets = new[]
        {
            new CompletionSet("x", "<b>Bold?</b> & more", [new Completion("s", hostile), new Completion("t", "plain answer")]),
            new CompletionSet("y", "second prompt", [new Completion("u", "one"), new Completion("v", "two")]),
        };
        using var project = TestProject.Create(sets, 1, "ana");
        await using var server = await LabelingServer.StartAsync(project.Store, "http://127.0.0.1:0");
        var page = await browser.Open(LabelingLinks.Labeler(server.Addresses[0], project.Tokens["ana"]));
        await page.ClickAsync("#start");

        await Expect(page.Locator("#prompt")).ToHaveTextAsync("<b>Bold?</b> & more");
        await Expect(page.Locator(".completion-text").Nth(0)).ToHaveTextAsync(hostile);
        Assert.That(await page.Locator("#prompt b, #completions script, #completions img").CountAsync(), Is.Zero);
        Assert.That(await page.EvaluateAsync<bool>("() => window.__pwned === undefined"), Is.True);

        // Thumbs mode from the keyboard: t, move to the second completion, u; then a click for thumbs down on the first.
        await page.Keyboard.PressAsync("t");
        await Expect(page.Locator("select.rank").First).ToBeHiddenAsync();
        await page.Keyboard.PressAsync("j");
        await page.Keyboard.PressAsync("u");
        await Expect(page.Locator("#completions li").Nth(1).Locator("button.thumb").First).ToHaveAttributeAsync("aria-pressed", "true");
        await page.Locator("#completions li").Nth(0).Locator("button.thumb").Nth(1).ClickAsync();
        await Expect(page.Locator("#completions li").Nth(0).Locator("button.thumb").Nth(1)).ToHaveAttributeAsync("aria-pressed", "true");
        await page.Keyboard.PressAsync("t");

        // Skip to the next item, then come back.
        await page.Keyboard.PressAsync("s");
        await Expect(page.Locator("#prompt")).ToHaveTextAsync("second prompt");
        await page.Keyboard.PressAsync("p");
        await Expect(page.Locator("#prompt")).ToHaveTextAsync("<b>Bold?</b> & more");
        Assert.That(await page.EvaluateAsync<bool>("() => window.__pwned === undefined"), Is.True);

        var thumbs = project.Store.Snapshot().Thumbs.Select(t => (t.PromptId, t.CompletionId, t.Up));
        Assert.That(thumbs, Is.EquivalentTo(new[] { ("x", "s", false), ("x", "t", true) }));
        Assert.That(project.Store.Snapshot().Rankings, Is.Empty, "skipping ranks nothing");
    }

    private static async Task RankWithMenus(IPage page, params string[] ranks)
    {
        for (int i = 0; i < ranks.Length; i++) await page.Locator("select.rank").Nth(i).SelectOptionAsync(ranks[i]);
    }
}
