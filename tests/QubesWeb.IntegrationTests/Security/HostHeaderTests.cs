// DNS rebinding: a page whose own name resolves to 127.0.0.1 still sends its own Host, which the console refuses,
// also with a signed-in session's cookie.
using System.Net;

namespace QubesWeb.IntegrationTests.Security;

public sealed class HostHeaderTests
{
    [Theory]
    [InlineData("evil.example")]
    [InlineData("127.0.0.1.evil.example")]
    [InlineData("localhost.evil.example")]
    public async Task A_forged_host_gets_400(string forged)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Host = forged;
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.DoesNotContain("QubesWeb", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_forged_host_with_the_consoles_own_port_gets_400()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var port = new Uri(host.BaseUrl).Port;
        var (status, _) = await RawHttp.SendAsync(host.BaseUrl, $"GET / HTTP/1.1\r\nHost: evil.example:{port}\r\n{SessionHeader(host)}");
        Assert.Equal(400, status);
    }

    [Fact]
    public async Task An_empty_host_gets_400()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var (status, response) = await RawHttp.SendAsync(host.BaseUrl, $"GET / HTTP/1.1\r\n{SessionHeader(host)}\r\nHost: ");
        Assert.True(status == 400, $"Expected 400 for an empty Host, got:\n{response}");
    }

    [Fact]
    public async Task A_request_without_host_gets_400()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var (status, response) = await RawHttp.SendAsync(host.BaseUrl, $"GET / HTTP/1.1\r\n{SessionHeader(host)}");
        Assert.True(status == 400, $"Expected 400 without a Host header, got:\n{response}");
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    public async Task A_loopback_host_with_the_port_gets_200(string name)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var port = new Uri(host.BaseUrl).Port;
        using var http = host.SignedInClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Host = $"{name}:{port}";
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("QubesWeb", await response.Content.ReadAsStringAsync());
    }

    /// <summary>A signed-in session's cookie: the Host checks hold for a signed-in user too, not only at the door.</summary>
    private static string SessionHeader(ConsoleHost host)
    {
        var (name, value) = host.NewSessionCookie();
        return $"Cookie: {name}={value}";
    }
}
