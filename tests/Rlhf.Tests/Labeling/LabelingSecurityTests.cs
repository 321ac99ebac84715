using System.Net;
using System.Text;
using Rlhf.Feedback;
using Rlhf.Labeling;
using Rlhf.Tests.Feedback;

namespace Rlhf.Tests.Labeling;

/// <summary>Who may read and write what, over real HTTP against the running app.</summary>
public class LabelingSecurityTests
{
    private TestProject project = null!;
    private LabelingServer server = null!;
    private ApiClient ana = null!, bob = null!;
    private long anasItem;

    [SetUp]
    public async Task Start()
    {
        // Overlap 1: the one item goes to ana only, so bob has nothing of his own to touch.
        project = TestProject.Create(TutorialExample.Sets.Values, 1, "ana", "bob");
        server = await LabelingServer.StartAsync(project.Store, "http://127.0.0.1:0");
        ana = await ApiClient.SignIn(server.BaseAddress, project.Tokens["ana"]);
        bob = await ApiClient.SignIn(server.BaseAddress, project.Tokens["bob"]);
        anasItem = (await ana.ClaimPending()).Single();
        Assert.That(await bob.ClaimPending(), Is.Empty);
        await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 2, 1, 3 } }));
    }

    [TearDown]
    public async Task Stop()
    {
        ana.Dispose();
        bob.Dispose();
        await server.DisposeAsync();
        project.Dispose();
    }

    [Test]
    public async Task AnotherLabelersItem_CannotBeRead_OrWritten()
    {
        var read = await bob.Json(bob.Get($"/api/labeler/items/{anasItem}"), HttpStatusCode.Forbidden);
        Assert.That(read.GetProperty("error").GetString(), Does.Contain("not assigned to you"));
        Assert.That(read.ToString(), Does.Not.Contain("hot houses"));
        await bob.Json(bob.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 3, 2, 1 } }), HttpStatusCode.Forbidden);
        await bob.Json(bob.Post($"/api/labeler/items/{anasItem}/thumb", new { position = 0, thumb = "up" }), HttpStatusCode.Forbidden);
        var rankings = project.Store.Snapshot();
        Assert.That(rankings.Rankings.Single().Labeler, Is.EqualTo("ana"));
        Assert.That(rankings.Rankings.Single().Ranks, Is.EqualTo(new[] { Rank.Of(2), Rank.Of(1), Rank.Of(3) }));
        Assert.That(rankings.Thumbs, Is.Empty);
    }

    [Test]
    public async Task NoToken_OrAWrongToken_Is401()
    {
        using var anonymous = ApiClient.Anonymous(server.BaseAddress);
        await anonymous.Json(anonymous.Get("/api/labeler/state"), HttpStatusCode.Unauthorized);
        await anonymous.Json(anonymous.Get($"/api/labeler/items/{anasItem}"), HttpStatusCode.Unauthorized);
        await anonymous.Json(anonymous.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 1, 2, 3 } }), HttpStatusCode.Unauthorized);
        await anonymous.Json(anonymous.Get("/api/organiser/status"), HttpStatusCode.Unauthorized);
        await anonymous.Json(anonymous.Get("/api/organiser/export"), HttpStatusCode.Unauthorized);

        var wrong = await anonymous.Json(anonymous.Post("/api/login", new { token = project.Tokens["ana"][..^1] + "x" }, antiForgery: false), HttpStatusCode.Unauthorized);
        Assert.That(wrong.GetProperty("error").GetString(), Does.Contain("unknown or revoked token"));

        // A forged cookie is no better than none.
        anonymous.Cookies.Add(server.BaseAddress, new Cookie("rlhf_labeler", "forged"));
        anonymous.Cookies.Add(server.BaseAddress, new Cookie("rlhf_organiser", "forged"));
        await anonymous.Json(anonymous.Get("/api/labeler/state"), HttpStatusCode.Unauthorized);
        await anonymous.Json(anonymous.Get("/api/organiser/status"), HttpStatusCode.Unauthorized);
        Assert.That(project.Store.Snapshot().Rankings.Single().Ranks[0], Is.EqualTo(Rank.Of(2)));
    }

    [Test]
    public async Task OrganiserPages_NeedTheOrganiserToken_AndTheOrganiserHasNoLabelerApi()
    {
        var refused = await ana.Json(ana.Get("/api/organiser/status"), HttpStatusCode.Forbidden);
        Assert.That(refused.GetProperty("error").GetString(), Does.Contain("organiser's link"));
        await ana.Json(ana.Get("/api/organiser/export"), HttpStatusCode.Forbidden);
        await ana.Json(ana.Post("/api/organiser/labelers", new { name = "mallory" }), HttpStatusCode.Forbidden);

        using var organiser = await ApiClient.SignIn(server.BaseAddress, project.OrganiserToken);
        var status = await organiser.Json(organiser.Get("/api/organiser/status"));
        Assert.That(status.GetProperty("rankings").GetInt32(), Is.EqualTo(1));
        await organiser.Json(organiser.Get("/api/labeler/state"), HttpStatusCode.Forbidden);
    }

    [Test]
    public async Task PostsWithoutTheAntiForgeryToken_AreRefused_AndChangeNothing()
    {
        var missing = await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 3, 2, 1 } }, antiForgery: false), HttpStatusCode.Forbidden);
        Assert.That(missing.GetProperty("error").GetString(), Does.Contain("anti-forgery"));

        // Another session's token does not fit this session.
        string anasToken = ana.Csrf;
        ana.Csrf = bob.Csrf;
        await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 3, 2, 1 } }), HttpStatusCode.Forbidden);
        ana.Csrf = anasToken;

        // What a cross-site HTML form can send: the cookie rides along, a custom header cannot.
        using var form = new FormUrlEncodedContent([new("ranks", "3,2,1")]);
        using var formResponse = await ana.Http.PostAsync($"/api/labeler/items/{anasItem}/ranking", form);
        Assert.That(formResponse.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));

        using var organiser = await ApiClient.SignIn(server.BaseAddress, project.OrganiserToken);
        await organiser.Json(organiser.Post("/api/organiser/labelers", new { name = "mallory" }, antiForgery: false), HttpStatusCode.Forbidden);
        await organiser.Json(organiser.Post("/api/organiser/close-complete", antiForgery: false), HttpStatusCode.Forbidden);

        var snapshot = project.Store.Snapshot();
        Assert.That(snapshot.Rankings.Single().Ranks, Is.EqualTo(new[] { Rank.Of(2), Rank.Of(1), Rank.Of(3) }));
        Assert.That(project.Store.Status().Labelers.Select(l => l.Name), Is.EqualTo(new[] { "ana", "bob" }));
        Assert.That(project.Store.Status().ClosedItems, Is.Zero);
    }

    [Test]
    public async Task ClosedItems_Refuse409_UntilTheOrganiserReopensThem()
    {
        using var organiser = await ApiClient.SignIn(server.BaseAddress, project.OrganiserToken);
        await organiser.Json(organiser.Post("/api/organiser/items/closed", new { promptId = "hot", closed = true }));
        var refused = await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 1, 2, 3 } }), System.Net.HttpStatusCode.Conflict);
        Assert.That(refused.GetProperty("error").GetString(), Does.Contain("closed"));
        var view = await ana.Json(ana.Get($"/api/labeler/items/{anasItem}"));
        Assert.That(view.GetProperty("closed").GetBoolean(), Is.True);
        await organiser.Json(organiser.Post("/api/organiser/items/closed", new { promptId = "nope", closed = true }), System.Net.HttpStatusCode.NotFound);

        await organiser.Json(organiser.Post("/api/organiser/items/closed", new { promptId = "hot", closed = false }));
        await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/ranking", new { ranks = new object[] { 1, 2, 3 } }));
        Assert.That(project.Store.Snapshot().Rankings.Single().Ranks[0], Is.EqualTo(Rank.Of(1)));
    }

    [TestCase("{\"ranks\": [1, 2]}", "has 2 entries; this item has 3")]
    [TestCase("{\"ranks\": [1, 2, 9]}", "ranks[2] = \"9\" is not a rank")]
    [TestCase("{\"ranks\": [\"x\", 2, 3]}", "ranks[0] = \"x\"")]
    [TestCase("{\"rank\": [1, 2, 3]}", "missing \"ranks\"")]
    [TestCase("{\"ranks\": [1, 2, 3]", "not valid JSON")]
    [TestCase("[1, 2, 3]", "expected a JSON object")]
    public async Task BadRankings_Get400_WithAClearMessage(string body, string message)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/labeler/items/{anasItem}/ranking")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-CSRF-Token", ana.Csrf);
        var error = await ana.Json(ana.Http.SendAsync(request), HttpStatusCode.BadRequest);
        Assert.That(error.GetProperty("error").GetString(), Does.Contain(message));
        Assert.That(project.Store.Snapshot().Rankings.Single().Ranks[0], Is.EqualTo(Rank.Of(2)));
    }

    [Test]
    public async Task InvalidUtf8_Gets400_NotA500([Values("ranking", "thumb", "login")] string route)
    {
        // JsonDocument accepts the bytes and GetString threw InvalidOperationException later: an empty 500 (and, in
        // a batched save, a failed commit for every other labeler's ranking queued with it).
        byte[] body = route switch
        {
            "ranking" => [.. "{\"ranks\":[\""u8, 0xFF, .. "\", 2, 3]}"u8],
            "thumb" => [.. "{\"position\":0,\"thumb\":\""u8, 0xFF, .. "\"}"u8],
            _ => [.. "{\"token\":\""u8, 0xFF, .. "\"}"u8],
        };
        string url = route switch
        {
            "ranking" => $"/api/labeler/items/{anasItem}/ranking",
            "thumb" => $"/api/labeler/items/{anasItem}/thumb",
            _ => "/api/login",
        };
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-CSRF-Token", ana.Csrf);
        var error = await ana.Json(ana.Http.SendAsync(request), HttpStatusCode.BadRequest);
        Assert.That(error.GetProperty("error").GetString(), Does.Contain("UTF-8"));
        Assert.That(project.Store.Snapshot().Rankings.Single().Ranks[0], Is.EqualTo(Rank.Of(2)));
    }

    [Test]
    public async Task AContentTypeThatOnlyStartsLikeJson_Gets415()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/labeler/items/{anasItem}/ranking")
        {
            Content = new StringContent("{\"ranks\": [1, 2, 3]}", Encoding.UTF8, "application/jsonx"),
        };
        request.Headers.Add("X-CSRF-Token", ana.Csrf);
        await ana.Json(ana.Http.SendAsync(request), HttpStatusCode.UnsupportedMediaType);
    }

    [Test]
    public async Task BadThumbs_AndUnknownItems_AreRefused()
    {
        var error = await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/thumb", new { position = 3, thumb = "up" }), HttpStatusCode.BadRequest);
        Assert.That(error.GetProperty("error").GetString(), Does.Contain("position 3 is out of range"));
        await ana.Json(ana.Post($"/api/labeler/items/{anasItem}/thumb", new { position = 0, thumb = "sideways" }), HttpStatusCode.BadRequest);
        await ana.Json(ana.Get("/api/labeler/items/999"), HttpStatusCode.Forbidden);
        Assert.That(project.Store.Snapshot().Thumbs, Is.Empty);
    }
}
