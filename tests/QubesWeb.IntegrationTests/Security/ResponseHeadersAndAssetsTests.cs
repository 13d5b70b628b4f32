// What every response forbids (framing, sniffing, referrers), and a home page that loads nothing from elsewhere.
using System.Net;
using System.Text.RegularExpressions;

namespace QubesWeb.IntegrationTests.Security;

public sealed partial class ResponseHeadersAndAssetsTests
{
    [Theory]
    [InlineData("/", HttpStatusCode.OK)]
    [InlineData("/qubes", HttpStatusCode.OK)]
    [InlineData("/app.css", HttpStatusCode.OK)]
    [InlineData("/_framework/blazor.web.js", HttpStatusCode.OK)]
    [InlineData("/no-such-page", HttpStatusCode.NotFound)]
    public async Task Responses_forbid_framing_sniffing_and_referrers(string path, HttpStatusCode expected)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        using var response = await http.GetAsync(path);
        Assert.Equal(expected, response.StatusCode);
        AssertSecurityHeaders(response);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/signin")]
    [InlineData("/_blazor/negotiate")]
    public async Task The_door_without_a_session_carries_the_same_headers(string path)
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        using var response = await http.GetAsync(path);
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, $"{path}: {response.StatusCode}");
        AssertSecurityHeaders(response);
    }

    [Fact]
    public async Task A_refused_cross_origin_request_carries_the_same_headers()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_blazor/negotiate?negotiateVersion=1") { Content = new ByteArrayContent([]) };
        request.Headers.TryAddWithoutValidation("Origin", "http://evil.example");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        AssertSecurityHeaders(response);
    }

    [Fact]
    public async Task Every_asset_the_home_page_references_is_served_by_the_console()
    {
        await using var host = await ConsoleHost.StartAsync(demo: false);
        using var http = host.SignedInClient();
        var html = await http.GetStringAsync("/");

        // Nothing in the page points off the console: no scheme-qualified or protocol-relative src/href.
        var urls = AttributeUrl().Matches(html).Select(m => WebUtility.HtmlDecode(m.Groups["url"].Value)).ToList();
        Assert.NotEmpty(urls);
        Assert.All(urls, u => Assert.False(IsExternal(u), $"The home page references '{u}', outside the console."));

        var assets = AssetUrl().Matches(html).Select(m => WebUtility.HtmlDecode(m.Groups["url"].Value)).Distinct().ToList();
        Assert.Contains(assets, a => a.EndsWith("blazor.web.js", StringComparison.Ordinal));
        Assert.Contains(assets, a => a.EndsWith("MudBlazor.min.css", StringComparison.Ordinal));
        Assert.Contains(assets, a => a.EndsWith("MudBlazor.min.js", StringComparison.Ordinal));
        Assert.Contains(assets, a => a.EndsWith("app.css", StringComparison.Ordinal));
        foreach (var asset in assets)
        {
            // <base href="/">: relative references resolve against the root.
            using var response = await http.GetAsync(new Uri(new Uri(host.BaseUrl + "/"), asset));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{asset}: {(int)response.StatusCode}");
            var body = await response.Content.ReadAsByteArrayAsync();
            Assert.True(body.Length > 0, $"{asset} came back empty.");
        }
    }

    private static void AssertSecurityHeaders(HttpResponseMessage response)
    {
        Assert.True(response.Headers.TryGetValues("Content-Security-Policy", out var csp), "No Content-Security-Policy.");
        // One header: with two, a browser enforces both, and the looser one reads as the policy to a reviewer.
        var policy = Assert.Single(csp);
        Assert.Contains("frame-ancestors 'none'", policy);
        Assert.Contains("default-src 'self'", policy);
        Assert.Contains("object-src 'none'", policy);
        Assert.True(response.Headers.TryGetValues("X-Content-Type-Options", out var nosniff), "No X-Content-Type-Options.");
        Assert.Equal("nosniff", Assert.Single(nosniff));
        Assert.True(response.Headers.TryGetValues("Referrer-Policy", out var referrer), "No Referrer-Policy.");
        Assert.Equal("no-referrer", Assert.Single(referrer));
    }

    // Not Uri.TryCreate: on Unix it takes "/qubes" for an absolute file: URI.
    private static bool IsExternal(string url) =>
        url.StartsWith("//", StringComparison.Ordinal) || url.StartsWith(@"\\", StringComparison.Ordinal)
        || Scheme().Match(url) is { Success: true } m && !m.Groups[1].Value.Equals("data", StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex("^([a-zA-Z][a-zA-Z0-9+.-]*):")]
    private static partial Regex Scheme();

    [GeneratedRegex("""\b(?:src|href)\s*=\s*["'](?<url>[^"']*)["']""", RegexOptions.IgnoreCase)]
    private static partial Regex AttributeUrl();

    [GeneratedRegex("""<(?:link\b[^>]*\bhref|script\b[^>]*\bsrc)\s*=\s*["'](?<url>[^"']+)["']""", RegexOptions.IgnoreCase)]
    private static partial Regex AssetUrl();
}
