// The console as a user sees it: the real app on its own demo estate, driven through headless Chromium.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.EndToEndTests;

public sealed class ConsoleInTheBrowserTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task DashboardAndQubesListShowTheDemoEstate()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        var appVms = (await host.Get<Inventory>().ListAsync()).Count(q => q.Class == QubeClass.AppVM);
        await ConsolePage.OpenAsync(page, "/");
        // The chip is in the app bar and again on the dashboard (both with id="connection-state": a duplicate id).
        await Expect(page.Locator("#connection-state").First).ToContainTextAsync("libvirt connected");
        await Expect(Count(page, "TemplateVM")).ToHaveAttributeAsync("data-count", "2");
        await Expect(Count(page, "AppVM")).ToHaveAttributeAsync("data-count", appVms.ToString());
        await Expect(Count(page, "StandaloneVM")).ToHaveAttributeAsync("data-count", "1");
        await Expect(Count(page, "AdminVM")).ToHaveAttributeAsync("data-count", "1");
        await Expect(page.Locator("[data-testid=state-running] [data-count]")).ToHaveAttributeAsync("data-count", "6"); // 5 autostart + dom0
        await Expect(page.Locator("#unmanaged")).ToContainTextAsync("legacy-vm");
        await Screenshots.SaveAsync(page, "dashboard");

        await ConsolePage.OpenAsync(page, "/qubes");
        foreach (var name in new[] { "fedora-42", "work", "vault", "devbox", "dom0" })
            await Expect(ConsolePage.QubeRow(page, name)).ToHaveCountAsync(1);
        await Expect(ConsolePage.StateOf(page, "work")).ToHaveAttributeAsync("data-state", "running");
        await Expect(ConsolePage.StateOf(page, "vault")).ToHaveAttributeAsync("data-state", "halted");
        await Expect(ConsolePage.StateOf(page, "fedora-42")).ToHaveAttributeAsync("data-state", "halted");
        await Expect(ConsolePage.StateOf(page, "devbox")).ToHaveAttributeAsync("data-state", "halted");
        await Expect(ConsolePage.StateOf(page, "dom0")).ToHaveAttributeAsync("data-state", "running");
        // default-dvm is internal: hidden until "Show internal qubes" is switched on.
        await Expect(ConsolePage.QubeRow(page, "default-dvm")).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "qubes");
    }

    [Fact]
    public async Task StartingAHaltedQubeFromTheListShowsItRunning()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        await Expect(ConsolePage.StateOf(page, "vault")).ToHaveAttributeAsync("data-state", "halted");

        await ConsolePage.Button(page, "Start vault").ClickAsync();

        await Expect(ConsolePage.StateOf(page, "vault")).ToHaveAttributeAsync("data-state", "running");
        await Expect(ConsolePage.Button(page, "Shut down vault")).ToBeVisibleAsync();
        Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain("vault")?.State);
        await Screenshots.SaveAsync(page, "qubes-vault-started");

        await ConsolePage.OpenAsync(page, "/tasks");
        var row = page.Locator("#tasks-table tbody tr").Filter(new LocatorFilterOptions { HasText = "Start vault" });
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row.Locator("[data-job-state]")).ToHaveAttributeAsync("data-job-state", "succeeded");
        await Screenshots.SaveAsync(page, "tasks-vault-started");
    }

    [Fact]
    public async Task StateChangedBehindTheConsolesBackAppearsWithoutReload()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        await Expect(ConsolePage.StateOf(page, "banking")).ToHaveAttributeAsync("data-state", "halted");
        // A mark in the page's own JavaScript world: a reload or navigation would wipe it.
        await page.EvaluateAsync("() => { window.qwSamePage = 'still here'; }");
        var navigations = 0;
        page.FrameNavigated += (_, frame) => { if (frame == page.MainFrame) navigations++; };

        // Behind the console's back: straight to libvirt on the console's own connection, no job, no click.
        host.Get<IHypervisor>().Start("banking");

        await Expect(ConsolePage.StateOf(page, "banking")).ToHaveAttributeAsync("data-state", "running");
        Assert.Equal("still here", await page.EvaluateAsync<string>("() => window.qwSamePage"));
        Assert.Equal(0, navigations);
        await Screenshots.SaveAsync(page, "qubes-banking-started-outside");
    }

    private static ILocator Count(IPage page, string cls) => page.Locator($"[data-testid=count-{cls}] [data-count]");
}
