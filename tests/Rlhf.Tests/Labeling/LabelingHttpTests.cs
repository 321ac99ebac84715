using System.Net;
using Rlhf.Labeling;
using Rlhf.Tests.Feedback;

namespace Rlhf.Tests.Labeling;

/// <summary>HTTP details of the app: HEAD where GET works, and request fields of the wrong type refused.</summary>
public class LabelingHttpTests
{
    private TestProject project = null!;
    private LabelingServer server = null!;

    [SetUp]
    public async Task Start()
    {
        project = TestProject.Create(TutorialExample.Sets.Values, 1, "ana");
        server = await LabelingServer.StartAsync(project.Store, "http://127.0.0.1:0");
    }

    [TearDown]
    public async Task Stop()
    {
        await server.DisposeAsync();
        project.Dispose();
    }

    [TestCase("/label")]
    [TestCase("/organiser")]
    [TestCase("/assets/app.css")]
    public async Task Head_WhereGetWorks_AnswersTheSameHeadersWithoutABody(string url) // RFC 9110: was 405
    {
        using var client = ApiClient.Anonymous(server.BaseAddress);
        using var get = await client.Get(url);
        Assert.That(get.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var head = await client.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        Assert.That(head.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(head.Content.Headers.ContentType, Is.EqualTo(get.Content.Headers.ContentType));
        Assert.That(await head.Content.ReadAsByteArrayAsync(), Is.Empty);
    }

    [Test]
    public async Task Head_OnTheApi_KeepsItsAccessRules()
    {
        using var client = ApiClient.Anonymous(server.BaseAddress);
        using var head = await client.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/api/organiser/status"));
        Assert.That(head.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [TestCase("{\"instructions\": 5}", "instructions")]
    [TestCase("{\"instructions\": [\"rank\"]}", "instructions")]
    [TestCase("{\"overlap\": \"2\"}", "overlap")]
    public async Task Settings_FieldOfTheWrongType_Is400_NamingIt_AndChangesNothing(string body, string field) // was "saved: true"
    {
        using var organiser = await ApiClient.SignIn(server.BaseAddress, project.OrganiserToken);
        string before = project.Store.Instructions;
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/organiser/settings")
        {
            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add(LabelingApi.AntiForgeryHeader, organiser.Csrf);
        var error = await organiser.Json(organiser.Http.SendAsync(request), HttpStatusCode.BadRequest);
        Assert.That(error.GetProperty("error").GetString(), Does.Contain($"\"{field}\""));
        Assert.That(project.Store.Instructions, Is.EqualTo(before));
    }
}
