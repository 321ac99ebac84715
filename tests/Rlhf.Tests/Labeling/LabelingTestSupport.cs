using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Rlhf.Feedback;
using Rlhf.Labeling;

namespace Rlhf.Tests.Labeling;

/// <summary>A project in a temporary folder: database, organiser token, labelers and their tokens.</summary>
internal sealed class TestProject : IDisposable
{
    private TestProject(string folder, LabelingStore store, string organiserToken)
    {
        Folder = folder;
        Store = store;
        OrganiserToken = organiserToken;
    }

    public string Folder { get; }

    public LabelingStore Store { get; }

    public string OrganiserToken { get; }

    public Dictionary<string, string> Tokens { get; } = new(StringComparer.Ordinal);

    public string DatabasePath => Store.Database.Path;

    public static TestProject Create(IEnumerable<CompletionSet> sets, int overlap, params string[] labelers)
    {
        string folder = Directory.CreateTempSubdirectory("rlhf-label-").FullName;
        var store = LabelingStore.Create(Path.Combine(folder, "project.db"), sets, overlap, null, out string organiser);
        var project = new TestProject(folder, store, organiser);
        foreach (string name in labelers) project.Tokens[name] = store.AddLabeler(name).Token;
        return project;
    }

    /// <summary>Items p0..p{count-1}, each with <paramref name="completions"/> completions c0, c1, ...</summary>
    public static List<CompletionSet> SyntheticSets(int count, int completions) =>
        Enumerable.Range(0, count).Select(i => new CompletionSet($"p{i}", $"prompt {i}",
            Enumerable.Range(0, completions).Select(j => new Completion($"c{j}", $"answer {j} to prompt {i}")).ToList())).ToList();

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>An HTTP client signed in as one labeler or the organiser: session cookie plus anti-forgery token.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient http;

    private ApiClient(Uri baseAddress)
    {
        Cookies = new CookieContainer();
        http = new HttpClient(new SocketsHttpHandler { CookieContainer = Cookies, UseCookies = true, MaxConnectionsPerServer = 4 })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(60),
        };
    }

    public CookieContainer Cookies { get; }

    public string Csrf { get; set; } = "";

    public HttpClient Http => http;

    public static ApiClient Anonymous(Uri baseAddress) => new(baseAddress);

    public static async Task<ApiClient> SignIn(Uri baseAddress, string token)
    {
        var client = new ApiClient(baseAddress);
        using var response = await client.http.PostAsJsonAsync("/api/login", new { token });
        string body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"sign-in failed: {(int)response.StatusCode} {body}");
        client.Csrf = JsonDocument.Parse(body).RootElement.GetProperty("csrf").GetString()!;
        return client;
    }

    public Task<HttpResponseMessage> Get(string url) => http.GetAsync(url);

    public Task<HttpResponseMessage> Post(string url, object? body = null, bool antiForgery = true)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new StringContent(body is null ? "{}" : JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        if (antiForgery) request.Headers.Add("X-CSRF-Token", Csrf);
        return http.SendAsync(request);
    }

    public async Task<JsonElement> Json(Task<HttpResponseMessage> call, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await call;
        string body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(expected), body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Claims a batch and returns the ids of the labeler's unranked, open items.</summary>
    public async Task<List<long>> ClaimPending()
    {
        var state = await Json(Post("/api/labeler/claim"));
        return state.GetProperty("items").EnumerateArray()
            .Where(i => !i.GetProperty("ranked").GetBoolean() && !i.GetProperty("closed").GetBoolean())
            .Select(i => i.GetProperty("itemId").GetInt64()).ToList();
    }

    public void Dispose() => http.Dispose();
}
