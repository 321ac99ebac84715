using Microsoft.Playwright;

namespace Rlhf.Tests.Labeling;

/// <summary>
/// Debian's headless Chromium (/usr/bin/chromium) driven by Playwright; never a downloaded browser. Each
/// launch gets Playwright's own fresh temporary profile; the flags keep Chromium off the (closed) network.
/// </summary>
internal sealed class BrowserSession : IAsyncDisposable
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private readonly IPlaywright playwright;

    private BrowserSession(IPlaywright playwright, IBrowser browser)
    {
        this.playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    public static async Task<BrowserSession> Launch()
    {
        if (!File.Exists(ChromiumPath)) Assert.Fail($"{ChromiumPath} is missing: install Debian's chromium (.ci/run does)");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
            ],
        });
        return new BrowserSession(playwright, browser);
    }

    public async Task<IPage> Open(string url, int width = 1280, int height = 800)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = height }, AcceptDownloads = true });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync(url);
        await page.Locator("body[data-ready='true']").WaitForAsync();
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        playwright.Dispose();
    }
}
