// Template root revisions and outdated qubes as a user meets them, on the real app with its embedded demo estate (real
// qcow2 files, libvirt's test driver), in headless Chromium. A template change is made as the integration tests make
// one: fedora-42 started by a job, written to as a guest would write, shut down by a job, which commits revision 2.
// The demo boots sys-net, sys-firewall, work and personal (on fedora-42) and mail (on debian-13).
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.EndToEndTests;

public sealed class OutdatedQubesTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private const long MiB = 1L << 20;
    private static readonly string[] OnFedora = ["sys-net", "sys-firewall", "work", "personal"];

    private static Task WriteToTemplateRootAsync(ConsoleHost host, string template) =>
        QemuImg.WritePatternAsync(Path.Combine(host.PoolDir, template, RootFiles.Dirty),
            0xcd, 64 * MiB, 4 * MiB);

    /// <summary>The outdated mark beside a qube's state on /qubes.</summary>
    private static ILocator MarkOf(IPage page, string name) => ConsolePage.QubeRow(page, name).Locator("[data-staleness]");

    [Fact]
    public async Task AfterATemplateChangeItsRunningQubesAreMarkedLiveAndRestartOutdatedClearsTheMarks()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        await Expect(ConsolePage.StateOf(page, "work")).ToHaveAttributeAsync("data-state", "running");
        await Expect(page.Locator("#qubes-grid [data-staleness]")).ToHaveCountAsync(0);

        // While the template runs, its running qubes will be outdated once it stops; the page follows without a reload.
        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        await Expect(MarkOf(page, "work")).ToHaveAttributeAsync("data-staleness", "to-be-outdated");
        await WriteToTemplateRootAsync(host, "fedora-42");
        await SucceedsAsync(host, JobKind.Shutdown, "fedora-42");

        foreach (var name in OnFedora)
            await Expect(MarkOf(page, name)).ToHaveAttributeAsync("data-staleness", "outdated");
        await Expect(MarkOf(page, "mail")).ToHaveCountAsync(0); // running, on debian-13
        await Expect(MarkOf(page, "research")).ToHaveCountAsync(0); // on fedora-42, halted
        await Expect(page.Locator("#qubes-grid [data-staleness]")).ToHaveCountAsync(OnFedora.Length);
        await Expect(MarkOf(page, "work")).ToHaveAttributeAsync("aria-label", new System.Text.RegularExpressions.Regex("^Outdated: "));
        await Screenshots.SaveSettledAsync(page, "qubes-outdated");

        // A second tab on the dashboard: the banner, and the restart from it.
        var dashboard = await page.Context.NewPageAsync();
        await ConsolePage.OpenAsync(dashboard, "/");
        var banner = dashboard.Locator("#outdated-banner");
        await Expect(banner).ToBeVisibleAsync();
        await Expect(banner.Locator("[data-outdated]")).ToHaveAttributeAsync("data-outdated", "4");
        await Expect(banner).ToContainTextAsync("4 running qube(s) are outdated");
        await Expect(dashboard.Locator("[data-testid='template-fedora-42'] [data-outdated]")).ToHaveAttributeAsync("data-outdated", "4");
        await Screenshots.SaveSettledAsync(dashboard, "dashboard-outdated-banner");

        // "Show them" opens the list filtered to the outdated qubes.
        await dashboard.Locator("#show-outdated").ClickAsync();
        await Expect(dashboard).ToHaveURLAsync(host.BaseUrl + "/qubes?state=outdated");
        await Expect(dashboard.Locator("#qubes-grid span.qw-name")).ToHaveCountAsync(OnFedora.Length);
        foreach (var name in OnFedora)
            await Expect(MarkOf(dashboard, name)).ToHaveAttributeAsync("data-staleness", "outdated");
        await Expect(dashboard.Locator("#qube-count")).ToHaveTextAsync("4 of 17 qubes shown");
        await Screenshots.SaveSettledAsync(dashboard, "qubes-outdated-filter");
        await ConsolePage.OpenAsync(dashboard, "/");

        await dashboard.Locator("#restart-all-outdated").ClickAsync();
        var dialog = dashboard.Locator("#restart-outdated-dialog");
        // Service qubes first, each after its netvm, then the others by name.
        await Expect(dialog.Locator("li[data-qube]")).ToHaveCountAsync(4);
        Assert.Equal(["sys-net", "sys-firewall", "personal", "work"],
            await dialog.Locator("li[data-qube]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.qube)"));
        await Expect(dialog.Locator("#shutdown-template-first")).ToHaveCountAsync(0); // fedora-42 is halted
        await Screenshots.SaveSettledAsync(dashboard, "restart-outdated-dialog");

        await dashboard.Locator("#restart-outdated-confirm").ClickAsync();

        await Expect(dialog).ToHaveCountAsync(0);
        await Expect(banner).ToHaveCountAsync(0);
        await Expect(dashboard.Locator("[data-testid='template-fedora-42'] [data-outdated]")).ToHaveAttributeAsync("data-outdated", "0");
        // The list in the first tab drops the marks as the qubes come back, still without a reload.
        await Expect(page.Locator("#qubes-grid [data-staleness]")).ToHaveCountAsync(0);
        foreach (var name in OnFedora)
            await Expect(ConsolePage.StateOf(page, name)).ToHaveAttributeAsync("data-state", "running");
        await Screenshots.SaveSettledAsync(page, "qubes-restarted");
        var restart = (await host.Get<JobEngine>().RecentAsync(20)).Single(j => JobKind.RestartOutdated.Is(j));
        Succeeded(await FinishedAsync(host, restart.Id));
    }

    [Fact]
    public async Task TheTemplatePageListsItsRevisionsAndARevertMakesTheOlderOneCurrentAgain()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        await WriteToTemplateRootAsync(host, "fedora-42");
        await SucceedsAsync(host, JobKind.Shutdown, "fedora-42");
        await ConsolePage.OpenAsync(page, "/templates/fedora-42");
        var rows = page.Locator("#revisions tr[data-revision]");
        await Expect(rows).ToHaveCountAsync(2);
        Assert.Equal(["2", "1"], await rows.EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.revision)"));
        var two = page.Locator("#revisions tr[data-revision='2']");
        var one = page.Locator("#revisions tr[data-revision='1']");
        await Expect(two).ToHaveAttributeAsync("data-current", "true");
        await Expect(two).ToContainTextAsync("current");
        await Expect(two).ToContainTextAsync("Committed at shutdown");
        await Expect(one).ToHaveAttributeAsync("data-current", "false");
        await Expect(one).ToContainTextAsync("Installed");
        // The qubes that started before the change still read revision 1, and are outdated.
        await Expect(one).ToContainTextAsync("personal, sys-firewall, sys-net, work");
        await Expect(page.Locator("#outdated-count")).ToHaveTextAsync("4");
        await Expect(page.Locator("#dependents-tree [data-dependent='work'] [data-staleness]")).ToHaveAttributeAsync("data-staleness", "outdated");
        var revert = ConsolePage.Button(page, "Revert to revision 1");
        await Expect(revert).ToBeEnabledAsync(); // fedora-42 is halted
        await Expect(ConsolePage.Button(page, "Revert to revision 2")).ToHaveCountAsync(0);
        await Screenshots.SaveSettledAsync(page, "template-revisions");

        await revert.ClickAsync();
        var box = page.Locator(".mud-dialog");
        await Expect(box).ToContainTextAsync("Revert fedora-42 to revision 1?");
        await Expect(box).ToContainTextAsync("revision 2 is kept, so this can be undone");
        await Screenshots.SaveSettledAsync(page, "template-revert-confirm");
        await box.GetByRole(AriaRole.Button, new LocatorGetByRoleOptions { Name = "Revert", Exact = true }).ClickAsync();

        await Expect(one).ToHaveAttributeAsync("data-current", "true");
        await Expect(two).ToHaveAttributeAsync("data-current", "false");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(ConsolePage.Button(page, "Revert to revision 2")).ToBeEnabledAsync();
        await Expect(ConsolePage.Button(page, "Revert to revision 1")).ToHaveCountAsync(0);
        // Its qubes run on revision 1, current again: none is outdated any more.
        await Expect(page.Locator("#outdated-count")).ToHaveTextAsync("0");
        await Expect(page.Locator("#dependents-tree [data-staleness]")).ToHaveCountAsync(0);
        await Screenshots.SaveSettledAsync(page, "template-reverted");
        Assert.Equal(1, (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!.Current);
    }

    [Fact]
    public async Task WhileTheTemplateRunsRevertIsDisabledAndTheRestartDialogOffersToShutItDownFirst()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        await WriteToTemplateRootAsync(host, "fedora-42");
        await SucceedsAsync(host, JobKind.Shutdown, "fedora-42");
        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        await ConsolePage.OpenAsync(page, "/templates/fedora-42");
        await Expect(page.Locator("#template-state [data-state]")).ToHaveAttributeAsync("data-state", "running");
        await Expect(ConsolePage.Button(page, "Revert to revision 1")).ToBeDisabledAsync();
        await Expect(page.Locator("#dirty-overlay")).ToContainTextAsync("it becomes revision 3 when fedora-42 shuts down");

        await page.Locator("#restart-template-outdated").ClickAsync();
        var dialog = page.Locator("#restart-outdated-dialog");
        await Expect(dialog.Locator("#template-still-running")).ToContainTextAsync("fedora-42 is still running");
        await Expect(dialog.Locator("#shutdown-template-first")).ToBeCheckedAsync();
        await Expect(dialog.Locator("li[data-qube]")).ToHaveCountAsync(4);
        await Screenshots.SaveSettledAsync(page, "restart-outdated-dialog-template-running");

        await page.Locator("#restart-outdated-confirm").ClickAsync();

        // The template is shut down first (committing nothing new), then its four qubes restart onto revision 2.
        await Expect(page.Locator("#template-state [data-state]")).ToHaveAttributeAsync("data-state", "halted");
        await Expect(page.Locator("#outdated-count")).ToHaveTextAsync("0");
        await Expect(page.Locator("#template-outdated")).ToHaveCountAsync(0);
        await Expect(ConsolePage.Button(page, "Revert to revision 1")).ToBeEnabledAsync();
    }
}
