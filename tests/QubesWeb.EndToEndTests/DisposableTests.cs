// A disposable in headless Chromium: launched from the dashboard's "New disposable", its page follows it from being
// made to running, and a shutdown from that page removes it: the page then says it was removed with its files.
using System.Text.RegularExpressions;
using QubesWeb.Data.Qubes;

namespace QubesWeb.EndToEndTests;

public sealed class DisposableTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task A_disposable_launched_from_the_dashboard_runs_and_is_gone_after_its_shutdown()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/");

        await page.Locator("#dashboard-new-disposable").ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex("/qubes/disp[0-9]{1,4}$"));
        var name = page.Url[(page.Url.LastIndexOf('/') + 1)..];
        await Expect(page.Locator("#qube-title")).ToHaveTextAsync(name);
        await Expect(page.Locator("#qube-header [data-state]")).ToHaveAttributeAsync("data-state", "running");
        await Expect(page.Locator("#disposable-kind")).ToContainTextAsync("A disposable from default-dvm: when it stops, it is removed with all its files.");
        // The launch task holds the qube until it ends, a moment after it runs.
        await Expect(page.Locator("#qube-jobs [data-job-state]").First).ToHaveAttributeAsync("data-job-state", "succeeded");
        await Screenshots.SaveAsync(page, "disposable-running");

        await ConsolePage.Button(page, $"Shut down {name}").ClickAsync();

        await Expect(page.Locator("#qube-removed")).ToContainTextAsync($"{name} was removed with its files");
        Assert.Null(await host.Get<Inventory>().FindAsync(name));
        Assert.False(Directory.Exists(Path.Combine(host.PoolDir, name)));
        await Screenshots.SaveAsync(page, "disposable-removed");
    }
}
