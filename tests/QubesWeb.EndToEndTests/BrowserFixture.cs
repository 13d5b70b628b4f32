// One headless Chromium (the Debian package, never a downloaded one) shared by the tests of a class; each test
// opens its own browser context against its own console (OpenConsoleAsync starts both).

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
    public async Task<IPage> NewPageAsync(ConsoleHost host, bool signedIn = true, ViewportSize? viewport = null)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = host.BaseUrl,
            ViewportSize = viewport ?? new ViewportSize { Width = 1440, Height = 900 },
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

    /// <summary>
    /// What most tests start with: a console of their own (the embedded demo unless <paramref name="demo"/> says
    /// otherwise, started with <paramref name="extraArgs"/>) and a tab on it as <see cref="NewPageAsync"/> makes one.
    /// </summary>
    public async Task<ConsoleTab> OpenConsoleAsync(bool signedIn = true, bool? demo = null, ViewportSize? viewport = null,
        params string[] extraArgs)
    {
        var host = await ConsoleHost.StartAsync(demo: demo, extraArgs: extraArgs);
        try
        {
            return new ConsoleTab(host, await NewPageAsync(host, signedIn, viewport));
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
    }
}
