// The door: without a session nothing of the estate is shown or driven; the printed link, the pasted token, sign-out,
// expiry and the failed-attempt limit behave as a user and an intruder would find them.
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using QubesWeb.Hosting.SignIn;

namespace QubesWeb.IntegrationTests.Security;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SignInTests
{
    [Theory]
    [InlineData("/")]
    [InlineData("/qubes")]
    [InlineData("/qubes/vault")]
    [InlineData("/templates/fedora-42")]
    [InlineData("/tasks")]
    public async Task Without_a_session_a_page_is_the_sign_in_page_with_no_estate_data(string path)
    {
        await using var host = await ConsoleHost.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        using var response = await http.GetAsync(path);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("action=\"/signin\"", html);
        foreach (var estate in new[] { "vault", "fedora-42", "sys-net", "work", "blazor.web.js" })
            Assert.DoesNotContain(estate, html.Replace($"value=\"{path}\"", ""));
    }

    [Fact]
    public async Task Without_a_session_no_circuit_opens_even_from_the_right_origin()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        using var negotiate = await NegotiateAsync(http, host);
        Assert.Equal(HttpStatusCode.Unauthorized, negotiate.StatusCode);
        Assert.DoesNotContain("connectionToken", await negotiate.Content.ReadAsStringAsync());
        using var initializers = await http.GetAsync("/_blazor/initializers");
        Assert.Equal(HttpStatusCode.Unauthorized, initializers.StatusCode);

        using var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;
        ws.Options.SetRequestHeader("Origin", host.BaseUrl);
        await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(new Uri($"ws://{new Uri(host.BaseUrl).Authority}/_blazor?id=x"), Timeout()));
        Assert.Equal(HttpStatusCode.Unauthorized, ws.HttpStatusCode);
    }

    [Fact]
    public async Task The_sign_in_link_sets_a_strict_httponly_cookie_and_redirects_to_the_same_page_without_the_token()
    {
        await using var host = await ConsoleHost.StartAsync();
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        var token = host.Get<SignInSecret>().Token;
        Assert.Equal($"{host.BaseUrl}/?token={token}", host.SignInUrl);

        using var response = await http.GetAsync($"/qubes?state=running&token={token}");
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/qubes?state=running", response.Headers.Location!.OriginalString);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"qubesweb-session-{host.Port}=", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(token, cookie);

        using var page = new HttpRequestMessage(HttpMethod.Get, "/qubes/vault");
        page.Headers.Add("Cookie", cookie.Split(';')[0]);
        using var signedIn = await http.SendAsync(page);
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        var html = await signedIn.Content.ReadAsStringAsync();
        Assert.Contains("vault", html);
        Assert.DoesNotContain(token, html);
    }

    [Fact]
    public async Task A_pasted_token_signs_in_and_returns_to_the_page_asked_for()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        using var response = await PostFormAsync(http, "/signin", host.BaseUrl, ("token", host.Get<SignInSecret>().Token), ("return", "/tasks"));
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/tasks", response.Headers.Location!.OriginalString);
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith($"qubesweb-session-{host.Port}=", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example")]
    [InlineData("http://evil.example/")]
    [InlineData("/signout")]
    public async Task A_pasted_token_never_returns_to_another_host(string returnTo)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        using var response = await PostFormAsync(http, "/signin", host.BaseUrl, ("token", host.Get<SignInSecret>().Token), ("return", returnTo));
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/", response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task A_sign_in_form_posted_from_another_origin_is_refused()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        using var response = await PostFormAsync(http, "/signin", $"http://127.0.0.1:{host.Port + 1}", ("token", host.Get<SignInSecret>().Token));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
        Assert.Equal(0, host.Get<SessionStore>().Count);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0000")]
    [InlineData("'; DROP TABLE qubes; --")]
    public async Task A_wrong_token_is_refused_with_a_message_and_no_session(string wrong)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        using var response = await http.GetAsync($"/?token={Uri.EscapeDataString(wrong)}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("not this console", WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync()));
        Assert.False(response.Headers.Contains("Set-Cookie"));
        Assert.Equal(0, host.Get<SessionStore>().Count);
    }

    [Fact]
    public async Task Past_the_failed_attempt_limit_even_the_right_token_waits()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false, extraArgs: "--SignIn:FailedAttemptsPerMinute=3");
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        for (var i = 0; i < 3; i++)
        {
            using var wrong = await http.GetAsync($"/?token=guess{i}");
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        using var limited = await http.GetAsync($"/?token={host.Get<SignInSecret>().Token}");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.True(limited.Headers.RetryAfter?.Delta > TimeSpan.Zero, "No Retry-After.");
        Assert.Contains("Too many failed sign-in attempts", await limited.Content.ReadAsStringAsync());
        Assert.Equal(0, host.Get<SessionStore>().Count);
    }

    [Fact]
    public async Task Sign_out_ends_the_session_and_cuts_its_open_circuit()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        var (name, value) = host.NewSessionCookie();
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        http.DefaultRequestHeaders.Add("Cookie", $"{name}={value}");
        using var ws = await OpenCircuitSocketAsync(host, http, $"{name}={value}");

        // A sign-out without the console's Origin (a link or form elsewhere) changes nothing.
        using (var forged = await http.PostAsync("/signout", null))
            Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        using (var still = await http.GetAsync("/"))
            Assert.Equal(HttpStatusCode.OK, still.StatusCode);

        using var signOut = await PostFormAsync(http, "/signout", host.BaseUrl);
        Assert.Equal(HttpStatusCode.SeeOther, signOut.StatusCode);
        Assert.StartsWith("/signin", signOut.Headers.Location!.OriginalString);
        await AssertCutAsync(ws);
        using var after = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task An_idle_session_expires_and_its_open_circuit_is_cut()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false, extraArgs: "--SignIn:SessionIdleTimeout=00:00:02");
        var (name, value) = host.NewSessionCookie();
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false }) { BaseAddress = new Uri(host.BaseUrl) };
        http.DefaultRequestHeaders.Add("Cookie", $"{name}={value}");
        using var ws = await OpenCircuitSocketAsync(host, http, $"{name}={value}");

        var sessions = host.Get<SessionStore>();
        await Eventually.UntilAsync(() => sessions.Count == 0, "the idle session to expire", TimeSpan.FromSeconds(20));
        await AssertCutAsync(ws);
        using var after = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task The_secret_is_private_survives_a_restart_and_rotation_ends_the_old_link()
    {
        var dataDir = ConsoleHost.NewDataDir();
        // Stopped, not disposed, between starts: disposing a host deletes its data folder.
        var host = await ConsoleHost.StartAsync(demo: false, dataDir: dataDir);
        var first = host.Get<SignInSecret>().Token;
        Assert.Matches("^[0-9a-f]{48}$", first); // 192 bits
        foreach (var file in new[] { "sign-in-secret", "sign-in-link" })
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dataDir, file)));
        Assert.Equal(host.SignInUrl, File.ReadAllText(Path.Combine(dataDir, "sign-in-link")).Trim());
        await host.StopAsync();

        var again = await ConsoleHost.StartAsync(demo: false, dataDir: dataDir);
        Assert.Equal(first, again.Get<SignInSecret>().Token);
        await again.StopAsync();

        await using var rotated = await ConsoleHost.StartAsync(demo: false, dataDir: dataDir, extraArgs: "--rotate-secret");
        var token = rotated.Get<SignInSecret>().Token;
        Assert.NotEqual(first, token);
        Assert.Contains(token, File.ReadAllText(Path.Combine(dataDir, "sign-in-link")));
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(rotated.BaseUrl) };
        using (var old = await http.GetAsync($"/?token={first}"))
            Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
        using var fresh = await http.GetAsync($"/?token={token}");
        Assert.Equal(HttpStatusCode.SeeOther, fresh.StatusCode);
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    private static Task<HttpResponseMessage> NegotiateAsync(HttpClient http, ConsoleHost host)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/_blazor/negotiate?negotiateVersion=1") { Content = new ByteArrayContent([]) };
        request.Headers.Add("Origin", host.BaseUrl);
        return http.SendAsync(request);
    }

    private static Task<HttpResponseMessage> PostFormAsync(HttpClient http, string path, string origin, params (string Key, string Value)[] fields)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new FormUrlEncodedContent(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value))),
        };
        request.Headers.Add("Origin", origin);
        return http.SendAsync(request);
    }

    /// <summary>A circuit's WebSocket as blazor.web.js opens it: negotiate, then upgrade with the session's cookie.</summary>
    private static async Task<ClientWebSocket> OpenCircuitSocketAsync(ConsoleHost host, HttpClient http, string cookie)
    {
        using var negotiate = await NegotiateAsync(http, host);
        Assert.Equal(HttpStatusCode.OK, negotiate.StatusCode);
        using var json = JsonDocument.Parse(await negotiate.Content.ReadAsStringAsync());
        var id = json.RootElement.GetProperty("connectionToken").GetString()!;
        var ws = new ClientWebSocket();
        ws.Options.SetRequestHeader("Origin", host.BaseUrl);
        ws.Options.SetRequestHeader("Cookie", cookie);
        await ws.ConnectAsync(new Uri($"ws://{new Uri(host.BaseUrl).Authority}/_blazor?id={Uri.EscapeDataString(id)}"), Timeout());
        Assert.Equal(WebSocketState.Open, ws.State);
        return ws;
    }

    /// <summary>The server ended the connection: a receive ends (close or reset) instead of waiting for data.</summary>
    private static async Task AssertCutAsync(ClientWebSocket ws)
    {
        var buffer = new byte[4096];
        try
        {
            // SignalR's handshake is not sent, so the server sends nothing: a receive only ends when the socket does.
            while (true)
            {
                var result = await ws.ReceiveAsync(buffer, Timeout());
                if (result.MessageType == WebSocketMessageType.Close) return;
            }
        }
        catch (WebSocketException)
        {
            // The server aborted the connection.
        }
        Assert.NotEqual(WebSocketState.Open, ws.State);
    }
}
