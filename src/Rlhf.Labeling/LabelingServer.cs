using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rlhf.Feedback;

namespace Rlhf.Labeling;

/// <summary>
/// The labeling web app: ASP.NET Core minimal APIs over a <see cref="LabelingStore"/> and two static pages
/// (/label for labelers, /organiser for the organiser). Bound to 127.0.0.1 unless told otherwise.
/// </summary>
/// <remarks>
/// Authentication: the private link carries the token in its fragment; the page trades it once
/// (POST /api/login) for an HttpOnly, SameSite=Strict cookie. Every POST except login must also carry the
/// anti-forgery token (header X-CSRF-Token), an HMAC of the token hash that only same-origin script can read.
/// </remarks>
public sealed class LabelingServer : IAsyncDisposable
{
    public const string DefaultUrls = "http://127.0.0.1:5000";

    private readonly WebApplication app;

    private LabelingServer(WebApplication app, IReadOnlyList<string> addresses)
    {
        this.app = app;
        Addresses = addresses;
    }

    /// <summary>The addresses actually bound (a port 0 in the URLs becomes the port the system chose).</summary>
    public IReadOnlyList<string> Addresses { get; }

    public Uri BaseAddress => new(Addresses[0]);

    public static async Task<LabelingServer> StartAsync(LabelingStore store, string urls = DefaultUrls, LogLevel logLevel = LogLevel.None, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.Services.Configure<KestrelServerOptions>(o => o.Limits.MaxRequestBodySize = 1 << 20);
        builder.Logging.ClearProviders();
        if (logLevel != LogLevel.None)
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Logging.SetMinimumLevel(logLevel);
        }

        var app = builder.Build();
        var api = new LabelingApi(store);
        app.Use(SecurityHeaders);
        app.Use(api.TranslateErrors);
        api.Map(app);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        return new LabelingServer(app, addresses);
    }

    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
    }

    private static Task SecurityHeaders(HttpContext context, RequestDelegate next)
    {
        var h = context.Response.Headers;
        // No inline script or style anywhere, so even a slip in escaping cannot run injected code.
        h.ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "no-referrer";
        h.CacheControl = "no-store";
        return next(context);
    }
}
