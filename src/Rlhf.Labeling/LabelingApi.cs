using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Rlhf.Labeling;

/// <summary>The HTTP endpoints; each checks who is asking before touching the store.</summary>
internal sealed class LabelingApi(LabelingStore store)
{
    public const string LabelerCookie = "rlhf_labeler";
    public const string OrganiserCookie = "rlhf_organiser";
    public const string AntiForgeryHeader = "X-CSRF-Token";
    private const int QueueLength = 10;

    private readonly byte[] antiForgeryKey = store.AntiForgeryKey;

    public void Map(WebApplication app)
    {
        // RFC 9110 §9.3.2: HEAD is allowed wherever GET is (Kestrel sends the headers and drops the body). MapGet alone answers 405.
        void MapGetAndHead(string pattern, Delegate handler) => app.MapMethods(pattern, [HttpMethods.Get, HttpMethods.Head], handler);

        MapGetAndHead("/", () => Results.Redirect("/label"));
        MapGetAndHead("/label", () => Asset("label.html"));
        MapGetAndHead("/organiser", () => Asset("organiser.html"));
        MapGetAndHead("/assets/{file}", (string file) => Asset(file));

        app.MapPost("/api/login", Handler(Login));

        MapGetAndHead("/api/labeler/state", (HttpContext ctx) => State(Labeler(ctx, post: false)));
        app.MapPost("/api/labeler/claim", Handler(async ctx =>
        {
            var who = Labeler(ctx, post: true);
            await store.ClaimAsync(who.Id, QueueLength);
            return State(who);
        }));
        MapGetAndHead("/api/labeler/items/{id:long}", (HttpContext ctx, long id) => ItemJson(store.GetItem(Labeler(ctx, post: false).Id, id)));
        app.MapPost("/api/labeler/items/{id:long}/ranking", async (HttpContext ctx, long id) =>
        {
            var who = Labeler(ctx, post: true);
            using var body = await Body(ctx);
            if (!body.RootElement.TryGetProperty("ranks", out var ranks)) throw LabelingException.BadRequest("missing \"ranks\": one rank (1..n or \"F\") per completion");
            int revision = await store.SaveRankingAsync(who.Id, id, n => RankInput.Parse(ranks, n));
            return Results.Json(new { saved = true, itemId = id, revision });
        });
        app.MapPost("/api/labeler/items/{id:long}/thumb", async (HttpContext ctx, long id) =>
        {
            var who = Labeler(ctx, post: true);
            using var body = await Body(ctx);
            var root = body.RootElement;
            if (!root.TryGetProperty("position", out var p) || p.ValueKind != JsonValueKind.Number || !p.TryGetInt32(out int position))
            {
                throw LabelingException.BadRequest("\"position\" must be the completion's index (an integer)");
            }

            bool? up = root.TryGetProperty("thumb", out var t) ? t.ValueKind switch
            {
                JsonValueKind.Null => null,
                JsonValueKind.String when t.GetString() == "up" => true,
                JsonValueKind.String when t.GetString() == "down" => false,
                _ => throw LabelingException.BadRequest("\"thumb\" must be \"up\", \"down\" or null"),
            } : throw LabelingException.BadRequest("missing \"thumb\": \"up\", \"down\" or null");
            await store.SaveThumbAsync(who.Id, id, position, up);
            return Results.Json(new { saved = true });
        });

        MapGetAndHead("/api/organiser/status", (HttpContext ctx) =>
        {
            var token = Organiser(ctx, post: false);
            return StatusJson(store.Status(), store.Instructions, Tokens.AntiForgery(antiForgeryKey, token));
        });
        app.MapPost("/api/organiser/labelers", Handler(async ctx =>
        {
            Organiser(ctx, post: true);
            using var body = await Body(ctx);
            var added = store.AddLabeler(RequireString(body.RootElement, "name"));
            return Results.Json(new { name = added.Name, token = added.Token });
        }));
        app.MapPost("/api/organiser/settings", Handler(async ctx =>
        {
            Organiser(ctx, post: true);
            using var body = await Body(ctx);
            var root = body.RootElement;
            // A field of the wrong type is refused, not skipped: answering "saved" for a change that was dropped misleads.
            string? instructions = null;
            if (root.TryGetProperty("instructions", out var i))
            {
                instructions = i.ValueKind == JsonValueKind.String ? i.GetString() : throw LabelingException.BadRequest("\"instructions\" must be a string");
            }

            int? overlap = null;
            if (root.TryGetProperty("overlap", out var k))
            {
                overlap = k.ValueKind == JsonValueKind.Number && k.TryGetInt32(out int v) ? v : throw LabelingException.BadRequest("\"overlap\" must be an integer ≥ 1");
            }

            store.UpdateSettings(instructions, overlap);
            return Results.Json(new { saved = true });
        }));
        app.MapPost("/api/organiser/close-complete", (HttpContext ctx) =>
        {
            Organiser(ctx, post: true);
            return Results.Json(new { closed = store.CloseComplete() });
        });
        app.MapPost("/api/organiser/items/closed", Handler(async ctx =>
        {
            Organiser(ctx, post: true);
            using var body = await Body(ctx);
            var root = body.RootElement;
            bool closed = root.TryGetProperty("closed", out var c) && c.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? c.GetBoolean() : throw LabelingException.BadRequest("\"closed\" must be true or false");
            store.SetClosed(RequireString(root, "promptId"), closed);
            return Results.Json(new { saved = true });
        }));
        MapGetAndHead("/api/organiser/export", (HttpContext ctx) =>
        {
            Organiser(ctx, post: false);
            string temp = Path.Combine(Path.GetTempPath(), $"rlhf-export-{Guid.NewGuid():N}.jsonl");
            try
            {
                store.Export(temp, overwrite: true);
                return Results.File(File.ReadAllBytes(temp), "application/x-ndjson", "rankings.jsonl");
            }
            finally
            {
                File.Delete(temp);
            }
        });
    }

    // A lambda taking only HttpContext and returning Task<IResult> would bind as a RequestDelegate and drop its result.
    private static Delegate Handler(Func<HttpContext, Task<IResult>> handler) => handler;

    public async Task TranslateErrors(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (LabelingException e) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            context.Response.StatusCode = e.Status;
            await context.Response.WriteAsJsonAsync(new { error = e.Message });
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            context.Response.StatusCode = e.StatusCode;
            await context.Response.WriteAsJsonAsync(new { error = e.Message });
        }
    }

    private async Task<IResult> Login(HttpContext ctx)
    {
        string? token = await ReadLoginToken(ctx);
        var labeler = store.FindLabeler(token);
        if (labeler is not null)
        {
            SetCookie(ctx, LabelerCookie, token!);
            return Results.Json(new { role = "labeler", name = labeler.Name, csrf = Tokens.AntiForgery(antiForgeryKey, labeler.TokenHash) });
        }

        var organiser = store.OrganiserHash(token);
        if (organiser is not null)
        {
            SetCookie(ctx, OrganiserCookie, token!);
            return Results.Json(new { role = "organiser", name = "organiser", csrf = Tokens.AntiForgery(antiForgeryKey, organiser) });
        }

        throw new LabelingException(401, "unknown or revoked token; ask the organiser for your link");
    }

    private static async Task<string?> ReadLoginToken(HttpContext ctx)
    {
        using var doc = await Body(ctx);
        return doc.RootElement.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
    }

    private static void SetCookie(HttpContext ctx, string name, string token) =>
        ctx.Response.Cookies.Append(name, token, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = ctx.Request.IsHttps,
            Path = "/",
            IsEssential = true,
        });

    private LabelerIdentity Labeler(HttpContext ctx, bool post)
    {
        string? token = ctx.Request.Cookies[LabelerCookie];
        if (string.IsNullOrEmpty(token))
        {
            if (!string.IsNullOrEmpty(ctx.Request.Cookies[OrganiserCookie]) && store.OrganiserHash(ctx.Request.Cookies[OrganiserCookie]) is not null)
            {
                throw LabelingException.Forbidden("this is the labelers' API; the organiser has no items to rank");
            }

            throw new LabelingException(401, "not signed in: open your private labeling link");
        }

        var who = store.FindLabeler(token) ?? throw new LabelingException(401, "unknown or revoked token; ask the organiser for your link");
        if (post) RequireAntiForgery(ctx, who.TokenHash);
        return who;
    }

    private byte[] Organiser(HttpContext ctx, bool post)
    {
        string? token = ctx.Request.Cookies[OrganiserCookie];
        if (string.IsNullOrEmpty(token))
        {
            if (!string.IsNullOrEmpty(ctx.Request.Cookies[LabelerCookie]) && store.FindLabeler(ctx.Request.Cookies[LabelerCookie]) is not null)
            {
                throw LabelingException.Forbidden("the organiser's pages need the organiser's link; a labeler's link cannot open them");
            }

            throw new LabelingException(401, "not signed in: open the organiser's link");
        }

        var hash = store.OrganiserHash(token) ?? throw new LabelingException(401, "unknown or revoked organiser token");
        if (post) RequireAntiForgery(ctx, hash);
        return hash;
    }

    private void RequireAntiForgery(HttpContext ctx, byte[] tokenHash)
    {
        if (!Tokens.AntiForgeryMatches(antiForgeryKey, tokenHash, ctx.Request.Headers[AntiForgeryHeader].ToString()))
        {
            throw LabelingException.Forbidden($"missing or wrong anti-forgery token (header {AntiForgeryHeader}); reload the page");
        }
    }

    private static async Task<JsonDocument> Body(HttpContext ctx)
    {
        if (!ctx.Request.HasJsonContentType())
        {
            throw new LabelingException(415, "expected a JSON body (Content-Type: application/json)");
        }

        // The body is checked as UTF-8 as a whole: JsonDocument leaves string contents to GetString, which throws
        // InvalidOperationException (a 500, or a failed batch of other labelers' saves) on invalid bytes.
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer);
        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span)) throw LabelingException.BadRequest("body is not valid UTF-8");
        try
        {
            var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw LabelingException.BadRequest("expected a JSON object");
            }

            return doc;
        }
        catch (JsonException e)
        {
            throw LabelingException.BadRequest($"body is not valid JSON: {e.Message}");
        }
    }

    private static string RequireString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw LabelingException.BadRequest($"missing string \"{name}\"");

    private static IResult Asset(string file) =>
        StaticAssets.TryGet(file, out var content, out var type) ? Results.Bytes(content, type) : Results.NotFound();

    private IResult State(LabelerIdentity who) => Results.Json(new
    {
        name = who.Name,
        csrf = Tokens.AntiForgery(antiForgeryKey, who.TokenHash),
        instructions = store.Instructions,
        items = store.Assignments(who.Id).Select(a => new { itemId = a.ItemId, promptId = a.PromptId, ranked = a.Ranked, closed = a.Closed }),
    });

    private static IResult ItemJson(ItemView item) => Results.Json(new
    {
        itemId = item.ItemId,
        promptId = item.PromptId,
        prompt = item.Prompt,
        completions = item.Completions.Select(c => c.Text),
        ranks = item.Ranks?.Select(r => r.ToString()),
        thumbs = item.Thumbs.Select(t => t switch { true => "up", false => "down", null => null }),
        closed = item.Closed,
        revision = item.Revision,
    });

    private static IResult StatusJson(ProjectStatus s, string instructions, string csrf) => Results.Json(new
    {
        csrf,
        instructions,
        overlap = s.Overlap,
        items = s.Items,
        closedItems = s.ClosedItems,
        rankings = s.Rankings,
        itemsShortOfOverlap = s.ItemsShortOfOverlap,
        labelers = s.Labelers.Select(l => new { name = l.Name, assigned = l.Assigned, ranked = l.Ranked, thumbs = l.Thumbs }),
        shortOfOverlap = s.ShortOfOverlap.Select(i => new { promptId = i.PromptId, rankings = i.Rankings, closed = i.Closed }),
        agreement = new
        {
            flagBelow = s.Agreement.FlagBelow,
            alpha = double.IsNaN(s.Agreement.KrippendorffAlpha) ? (double?)null : s.Agreement.KrippendorffAlpha,
            labelers = s.Agreement.Labelers.Select(l => new
            {
                name = l.Labeler,
                meanTauB = double.IsNaN(l.MeanTauB) ? (double?)null : l.MeanTauB,
                prompts = l.Prompts,
                rankings = l.Rankings,
                flagged = l.Flagged,
            }),
        },
    });
}
