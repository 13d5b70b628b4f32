// One headless Chromium (the Debian package, never a downloaded one) shared by the tests of a class; each test
// opens its own browser context against its own console.
using Microsoft.Playwright;
using QubesWeb.Tests.Shared;

namespace QubesWeb.EndToEndTests;

public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>How long a condition may take to become true: generous, the machine has 2 cores and tests run in parallel.</summary>
    public const float WaitMs = 30_000;

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser is not started.");

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(WaitMs);
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
            ],
        });
    }

    /// <summary>
    /// A fresh context (cookies, storage) and page for one test, pointed at one console and signed in to it (the
    /// session's cookie, as the sign-in link sets it); <paramref name="signedIn"/> false leaves it at the door.
    /// </summary>
    public async Task<IPage> NewPageAsync(ConsoleHost host, bool signedIn = true)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = host.BaseUrl,
            ViewportSize = new ViewportSize { Width = 1440, Height = 900 },
        });
        context.SetDefaultTimeout(WaitMs);
        context.SetDefaultNavigationTimeout(WaitMs);
        if (signedIn)
        {
            var (name, value) = host.NewSessionCookie();
            await context.AddCookiesAsync([new Cookie { Name = name, Value = value, Url = host.BaseUrl, HttpOnly = true, SameSite = SameSiteAttribute.Strict }]);
        }
        return await context.NewPageAsync();
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
    }
}
