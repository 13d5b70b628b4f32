// Updates as a user runs them, on the real app with its embedded demo estate (real qcow2 files, libvirt's test
// driver), in headless Chromium. The test driver runs no guest, so the demo's package managers are simulated (and say
// so); the revisions their updates commit are real files. The demo boots sys-net, sys-firewall, work and personal (on
// fedora-42) and mail (on debian-13); no template was ever checked or updated.
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Updates;

namespace QubesWeb.EndToEndTests;

public sealed class UpdatesTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private const long MiB = 1L << 20;

    private static ILocator Row(IPage page, string qube) => page.Locator($"#updates-grid tr[data-qube='{qube}']");

    private static ILocator LogLine(IPage page, string text) =>
        page.Locator("#task-log .qw-log-text").Filter(new LocatorFilterOptions { HasText = text });

    [Fact]
    public async Task A_template_checked_and_updated_from_the_updates_page_streams_its_log_commits_revision_2_and_outdates_its_qubes()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/");
        await page.GetByRole(AriaRole.Link, new PageGetByRoleOptions { Name = "Updates", Exact = true }).ClickAsync();
        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/updates");
        await Expect(page.Locator("#demo-simulated")).ToContainTextAsync(
            "Demo: package managers are simulated (libvirt's test driver runs no guest); the revisions they produce are real.");
        // The templates, then the standalone; never checked, so MAYBE, and nothing ticked.
        Assert.Equal(["debian-13", "fedora-42", "devbox"],
            await page.Locator("#updates-grid tr[data-qube]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.qube)"));
        var fedora = Row(page, "fedora-42");
        await Expect(fedora).ToHaveAttributeAsync("data-available", "maybe");
        await Expect(fedora.Locator("[data-last-check]")).ToHaveTextAsync("never");
        await Expect(page.Locator("#updates-grid tr[data-selected='true']")).ToHaveCountAsync(0);
        await Expect(page.Locator("#update-selected")).ToBeDisabledAsync();

        // Check fedora-42: the simulation reports updates (it was never updated).
        await fedora.Locator("input[type=checkbox]").ClickAsync();
        await Expect(fedora).ToHaveAttributeAsync("data-selected", "true");
        await page.Locator("#check-updates").ClickAsync();
        await Expect(fedora.Locator("[data-job]")).ToHaveAttributeAsync("data-job-kind", "check-updates");
        await Expect(fedora.Locator("[data-job]")).ToHaveAttributeAsync("data-status", "succeeded");
        await Expect(fedora).ToHaveAttributeAsync("data-available", "yes");
        await Expect(fedora.Locator("[data-last-check]")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^\\d+ s ago$"));
        await Expect(Row(page, "debian-13")).ToHaveAttributeAsync("data-available", "maybe");
        await Expect(fedora).ToHaveAttributeAsync("data-selected", "true");
        await Screenshots.SaveSettledAsync(page, "updates-checked");

        // Update it; a second tab follows its task's log as it is written.
        await page.Locator("#update-selected").ClickAsync();
        var status = fedora.Locator("[data-job][data-job-kind='update']");
        await Expect(status).ToHaveCountAsync(1);
        var href = await status.Locator("a").GetAttributeAsync("href");
        Assert.Matches("^/tasks/\\d+$", href);
        var task = await page.Context.NewPageAsync();
        await ConsolePage.OpenAsync(task, href!);
        await Screenshots.SaveSettledAsync(page, "updates-running");
        await Expect(task.Locator("#task-title")).ToContainTextAsync("Update fedora-42");
        await Expect(LogLine(task, "[simulated by the demo]").First).ToBeVisibleAsync();
        await Expect(LogLine(task, "Upgrading").First).ToBeVisibleAsync();
        await Screenshots.SaveSettledAsync(task, "update-task-log-streaming");
        await Expect(task.Locator("[data-job-state]")).ToHaveAttributeAsync("data-job-state", "succeeded");
        await Expect(LogLine(task, "Upgrading")).ToHaveCountAsync(5);
        await Expect(LogLine(task, "fedora-42 is on revision 2 now (was 1).")).ToHaveCountAsync(1);
        await Expect(task.Locator("#task-progress")).ToHaveAttributeAsync("data-progress", "100");
        await Screenshots.SaveSettledAsync(task, "update-task-log-done");

        // Back on the updates page: done, NO, and the offer to restart the qubes left on revision 1.
        await Expect(status).ToHaveAttributeAsync("data-status", "succeeded");
        await Expect(fedora).ToHaveAttributeAsync("data-available", "no");
        await Expect(fedora).ToHaveAttributeAsync("data-selected", "false");
        await Expect(fedora.Locator("[data-last-update]")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^\\d+ s ago$"));
        await Expect(page.Locator("#updates-progress")).ToHaveCountAsync(0);
        await Expect(page.Locator("#updates-finished")).ToContainTextAsync("Updates finished: 1 succeeded");
        await Expect(page.Locator("#outdated-after-updates")).ToHaveAttributeAsync("data-outdated", "4");
        await Expect(page.Locator("#restart-after-updates")).ToBeEnabledAsync();
        await Screenshots.SaveSettledAsync(page, "updates-done");

        await page.Locator("#restart-after-updates").ClickAsync();
        var dialog = page.Locator("#restart-outdated-dialog");
        await Expect(dialog.Locator("li[data-qube]")).ToHaveCountAsync(4);
        // Service qubes first, each after its netvm, then the others by name.
        Assert.Equal(["sys-net", "sys-firewall", "personal", "work"],
            await dialog.Locator("li[data-qube]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.qube)"));
        await Expect(page.Locator(".mud-dialog")).ToContainTextAsync("Restart all outdated qubes");
        await Screenshots.SaveSettledAsync(page, "updates-restart-outdated-dialog");
        await page.Locator(".mud-dialog").GetByRole(AriaRole.Button, new LocatorGetByRoleOptions { Name = "Cancel", Exact = true }).ClickAsync();
        await Expect(dialog).ToHaveCountAsync(0);

        // The template's page: revision 2 current, its running qubes outdated.
        await ConsolePage.OpenAsync(task, "/templates/fedora-42");
        await Expect(task.Locator("#revisions tr[data-revision='2']")).ToHaveAttributeAsync("data-current", "true");
        await Expect(task.Locator("#revisions tr[data-revision='1']")).ToHaveAttributeAsync("data-current", "false");
        await Expect(task.Locator("#revisions tr[data-revision='2']")).ToContainTextAsync("Update (dnf -y upgrade --refresh)");
        await Expect(task.Locator("#outdated-count")).ToHaveTextAsync("4");
        foreach (var name in new[] { "sys-net", "sys-firewall", "work", "personal" })
            await Expect(task.Locator($"#dependents-tree [data-dependent='{name}'] [data-staleness]")).ToHaveAttributeAsync("data-staleness", "outdated");
        await Screenshots.SaveSettledAsync(task, "update-template-after");
    }

    [Fact]
    public async Task After_an_update_compacting_the_templates_root_wins_back_the_space_its_revisions_no_longer_need()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        // debian-13 runs and, as a guest would, rewrites half of what revision 1 holds; then it is updated, which
        // commits both as revision 2: the rewritten half of revision 1 is space nothing reads any more. mail, the
        // running qube on debian-13, restarts onto revision 2, so no running qube holds revision 1 either.
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(Path.Combine(host.PoolDir, "debian-13", RootFiles.Dirty),
            0xcd, 0, 8 * MiB);
        await SucceedsAsync(host, JobKind.Update, "debian-13");
        await SucceedsAsync(host, JobKind.Restart, "mail");
        // What the disk usage timer measures, made now rather than within its minute.
        await host.Get<RootMeasures>().MeasureReclaimableAsync();
        await ConsolePage.OpenAsync(page, "/templates/debian-13");
        var two = page.Locator("#revisions tr[data-revision='2']");
        await Expect(two).ToHaveAttributeAsync("data-current", "true");
        await Expect(two).ToContainTextAsync("Update (apt-get -q update; apt-get -q -y dist-upgrade)");
        await Expect(page.Locator("#template-state [data-state]")).ToHaveAttributeAsync("data-state", "halted");
        var reclaimable = page.Locator("#reclaimable");
        await Expect(reclaimable).ToContainTextAsync(new System.Text.RegularExpressions.Regex("compacted it would take .+: .+ reclaimable"));
        Assert.True(await AllocatedAsync(reclaimable) > await CompactedAsync(reclaimable) + 4 * MiB);
        var compact = page.Locator("#compact-root");
        await Expect(compact).ToBeEnabledAsync();
        await Screenshots.SaveSettledAsync(page, "compact-before");

        await compact.ClickAsync();
        var box = page.Locator(".mud-dialog");
        await Expect(box).ToContainTextAsync("Compact the root of debian-13?");
        await box.GetByRole(AriaRole.Button, new LocatorGetByRoleOptions { Name = "Compact", Exact = true }).ClickAsync();
        await Expect(box).ToHaveCountAsync(0);

        await Expect(reclaimable).ToContainTextAsync("nothing to reclaim");
        Assert.Equal(await AllocatedAsync(reclaimable), await CompactedAsync(reclaimable));
        // Revision 1 went with the compaction (no running qube read it); revision 2 stands alone.
        await Expect(page.Locator("#revisions tr[data-revision]")).ToHaveCountAsync(1);
        await Expect(two).ToContainTextAsync("(compacted)");
        await Screenshots.SaveSettledAsync(page, "compact-result");

        var job = (await host.Get<JobEngine>().RecentAsync(20)).Single(j => JobKind.Compact.Is(j));
        await ConsolePage.OpenAsync(page, $"/tasks/{job.Id}");
        await Expect(page.Locator("[data-job-state]")).ToHaveAttributeAsync("data-job-state", "succeeded");
        var won = LogLine(page, "won ");
        await Expect(won).ToHaveCountAsync(1);
        await Expect(won).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(
            "^Compacted revision 2 of debian-13: its revisions took .+, now .+; won [1-9][0-9.]* MiB\\.$"));
        await Screenshots.SaveSettledAsync(page, "compact-task");
    }

    private static async Task<long> AllocatedAsync(ILocator reclaimable) => long.Parse((await reclaimable.GetAttributeAsync("data-allocated"))!, System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<long> CompactedAsync(ILocator reclaimable) => long.Parse((await reclaimable.GetAttributeAsync("data-compacted"))!, System.Globalization.CultureInfo.InvariantCulture);

}
