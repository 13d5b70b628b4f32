// Signing in as a user does it, in Chromium: the printed link, a pasted token, sign-out; and a page of another origin
// on the same machine (another loopback port, so the same site to the browser) that tries to use the session.
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Hosting.SignIn;

namespace QubesWeb.EndToEndTests;

public sealed class SignInTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task The_printed_link_lands_on_the_dashboard_without_the_token_and_sign_out_ends_the_session()
    {
        await using var tab = await browser.OpenConsoleAsync(signedIn: false);
        var (host, page) = tab;
        var token = host.Get<SignInSecret>().Token;
        await page.GotoAsync(host.SignInUrl);
        await Expect(page.Locator("#qw-interactive")).ToHaveAttributeAsync("data-interactive", "true");
        Assert.Equal(host.BaseUrl + "/", page.Url);
        Assert.DoesNotContain(token, await page.ContentAsync());
        await Expect(page.Locator("#connection-state").First).ToContainTextAsync("libvirt connected");
        await Screenshots.SaveAsync(page, "signed-in-dashboard");

        await ConsolePage.Button(page, "Sign out").ClickAsync();
        await Expect(page.Locator("#signin-error")).ToHaveTextAsync("You are signed out.");
        Assert.Equal(0, host.Get<SessionStore>().Count);
        await Screenshots.SaveAsync(page, "signed-out");

        // The cookie the browser still holds opens nothing any more.
        var response = await page.GotoAsync("/qubes");
        Assert.Equal(401, response!.Status);
        await Expect(page.Locator("form[action='/signin']")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task A_pasted_token_opens_the_page_that_was_asked_for()
    {
        await using var tab = await browser.OpenConsoleAsync(signedIn: false);
        var (host, page) = tab;
        var response = await page.GotoAsync("/qubes/vault");
        Assert.Equal(401, response!.Status);
        await Expect(page.Locator("body")).Not.ToContainTextAsync("fedora-42");
        await page.Locator("#token").FillAsync("not-the-token");
        await ConsolePage.Button(page, "Sign in").ClickAsync();
        await Expect(page.Locator("#signin-error")).ToContainTextAsync("not this console");
        await Screenshots.SaveAsync(page, "sign-in-refused");

        await page.Locator("#token").FillAsync(host.Get<SignInSecret>().Token);
        await ConsolePage.Button(page, "Sign in").ClickAsync();
        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/qubes/vault");
        await Expect(page.Locator("#qw-interactive")).ToHaveAttributeAsync("data-interactive", "true");
        await Expect(page.Locator("#qube-title")).ToHaveTextAsync("vault");
    }

    [Fact]
    public async Task A_page_of_another_loopback_origin_cannot_use_the_session()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await using var evil = await EvilSiteAsync(host.BaseUrl);
        // The user is signed in, then visits a page another local user serves on another port.
        await ConsolePage.OpenAsync(page, "/");
        await page.GotoAsync(evil.Url);
        await Expect(page.Locator("#done")).ToHaveTextAsync("done");

        // It could not read a page (CORS), the console refused its circuit (Origin), and its sign-out did not
        // end the session (Sec-Fetch-Site: same-site is not same-origin).
        await Expect(page.Locator("#read")).ToHaveTextAsync("blocked");
        await Expect(page.Locator("#socket")).ToHaveTextAsync("refused");
        Assert.Equal(1, host.Get<SessionStore>().Count);
        await ConsolePage.OpenAsync(page, "/qubes");
    }

    [Fact]
    public async Task Clicks_in_an_open_tab_keep_the_session_alive_past_its_idle_timeout()
    {
        // The tab makes no HTTP request after it loads: only its circuit's events say that someone works in it.
        var idle = TimeSpan.FromSeconds(3);
        await using var tab = await browser.OpenConsoleAsync(demo: false, extraArgs: $"--SignIn:SessionIdleTimeout={idle}");
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/");
        var sessions = host.Get<SessionStore>();
        var session = Assert.Single(sessions.All());
        var loaded = DateTimeOffset.UtcNow; // the page's last HTTP request (the circuit's upgrade) is behind us
        while (DateTimeOffset.UtcNow - loaded < 2 * idle)
        {
            await page.Locator("#dark-mode").ClickAsync();
            Assert.False(session.IsClosed, $"The session ended {DateTimeOffset.UtcNow - loaded} after the page loaded, while the user clicked.");
        }
        Assert.Same(session, Assert.Single(sessions.All()));
    }

    /// <summary>A page on another loopback port that tries, with the user's browser, to read, drive and sign out the console.</summary>
    private static async Task<EvilSite> EvilSiteAsync(string console)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var ws = "ws" + console[4..];
        app.MapGet("/", () => Results.Content($$"""
            <!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p id="read">-</p><p id="socket">-</p><p id="done"></p>
            <script>
            (async () => {
              try { const r = await fetch("{{console}}/qubes", { credentials: "include" }); document.getElementById("read").textContent = await r.text(); }
              catch { document.getElementById("read").textContent = "blocked"; }
              // Opaque answers, and the console's Cross-Origin-Resource-Policy makes the browser drop them: only sent.
              for (const path of ["/_blazor/negotiate?negotiateVersion=1", "/signout"])
                try { await fetch("{{console}}" + path, { method: "POST", mode: "no-cors", credentials: "include" }); } catch { }
              await new Promise(done => {
                const s = new WebSocket("{{ws}}/_blazor?id=x");
                s.onopen = () => { document.getElementById("socket").textContent = "open"; done(); };
                s.onerror = () => { document.getElementById("socket").textContent = "refused"; done(); };
              });
              document.getElementById("done").textContent = "done";
            })();
            </script></body></html>
            """, "text/html"));
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new EvilSite(app, url);
    }

    private sealed record EvilSite(WebApplication App, string Url) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await App.DisposeAsync();
    }
}
