// Cross-site WebSocket hijacking: only the console's own origin may open a Blazor circuit, by negotiate or upgrade,
// even for a request that carries a signed-in session's cookie.
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;

namespace QubesWeb.IntegrationTests.Security;

public sealed class OriginTests
{
    /// <summary>Origins a page elsewhere could send; PORT is replaced by the console's port. "" means no Origin header.</summary>
    public static TheoryData<string> ForeignOrigins => new()
    {
        "http://evil.example",
        "http://127.0.0.1:PORT.evil.example",
        "http://127.0.0.1:PORT:9999",
        "http://localhost:PORT",
        "https://127.0.0.1:PORT",
        "null",
        "",
    };

    [Theory]
    [MemberData(nameof(ForeignOrigins))]
    public async Task Negotiate_from_a_foreign_or_missing_origin_is_refused(string origin)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        using var response = await NegotiateAsync(http, WithPort(origin, host));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.DoesNotContain("connectionToken", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Negotiate_from_the_exact_origin_is_accepted()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        using var response = await NegotiateAsync(http, host.BaseUrl);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("connectionToken", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_initializers_list_blazor_fetches_first_is_served_without_origin()
    {
        // blazor.web.js GETs it same-origin, and browsers send no Origin on a same-origin GET.
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        using var response = await http.GetAsync("/_blazor/initializers");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_long_polling_get_of_a_circuit_without_origin_is_refused()
    {
        // The initializers exception is that one path: the circuit's own GET transports still need the origin.
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var token = await ConnectionTokenAsync(host);
        using var http = host.SignedInClient();
        using var response = await http.GetAsync($"/_blazor?id={Uri.EscapeDataString(token)}");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task Negotiate_with_two_origin_headers_is_refused()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var (status, response) = await RawHttp.SendAsync(host.BaseUrl,
            $"POST /_blazor/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: {new Uri(host.BaseUrl).Authority}\r\nCookie: {Cookie(host)}\r\n" +
            $"Origin: http://evil.example\r\nOrigin: {host.BaseUrl}\r\nContent-Length: 0");
        Assert.True(status == 403, $"Expected 403, got:\n{response}");
    }

    [Theory]
    [MemberData(nameof(ForeignOrigins))]
    public async Task Websocket_upgrade_from_a_foreign_or_missing_origin_is_refused(string origin)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        // A real connection token, so the only thing wrong with the upgrade is its Origin.
        var token = await ConnectionTokenAsync(host);
        using var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;
        ws.Options.SetRequestHeader("Cookie", Cookie(host));
        var sent = WithPort(origin, host);
        if (sent.Length > 0) ws.Options.SetRequestHeader("Origin", sent);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(BlazorSocket(host, token), timeout.Token));
        Assert.Equal(HttpStatusCode.Forbidden, ws.HttpStatusCode);
    }

    [Fact]
    public async Task Websocket_upgrade_from_the_exact_origin_is_accepted()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var token = await ConnectionTokenAsync(host);
        using var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;
        ws.Options.SetRequestHeader("Cookie", Cookie(host));
        ws.Options.SetRequestHeader("Origin", host.BaseUrl);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await ws.ConnectAsync(BlazorSocket(host, token), timeout.Token);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, ws.HttpStatusCode);
        Assert.Equal(WebSocketState.Open, ws.State);
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
    }

    private static string Cookie(ConsoleHost host)
    {
        var (name, value) = host.NewSessionCookie();
        return $"{name}={value}";
    }

    private static string WithPort(string origin, ConsoleHost host) => origin.Replace("PORT", new Uri(host.BaseUrl).Port.ToString());

    private static Task<HttpResponseMessage> NegotiateAsync(HttpClient http, string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/_blazor/negotiate?negotiateVersion=1") { Content = new ByteArrayContent([]) };
        if (origin.Length > 0) Assert.True(request.Headers.TryAddWithoutValidation("Origin", origin));
        return http.SendAsync(request);
    }

    private static async Task<string> ConnectionTokenAsync(ConsoleHost host)
    {
        using var http = host.SignedInClient();
        using var response = await NegotiateAsync(http, host.BaseUrl);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("connectionToken").GetString()!;
    }

    private static Uri BlazorSocket(ConsoleHost host, string token) =>
        new($"ws://{new Uri(host.BaseUrl).Authority}/_blazor?id={Uri.EscapeDataString(token)}");
}
