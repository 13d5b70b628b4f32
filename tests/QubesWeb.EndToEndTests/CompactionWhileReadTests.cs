// The issue's walk through the demo, in headless Chromium: fedora-42 updated (revision 2) while sys-net, sys-firewall,
// work and personal run on revision 1, then compacted from its page. The page must say that revision 1 waits for those
// qubes (not "kept" with a Revert button, not "nothing to reclaim"), and once "Restart outdated" has restarted them,
// revision 1 is gone from the page and the disk, the root's usage follows without the one-minute timer (set to a
// day here), and the compaction's task log says what its going won.
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Updates;

namespace QubesWeb.EndToEndTests;

public sealed class CompactionWhileReadTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    /// <summary>What fedora-42's root files take on the host now, as qemu-img says.</summary>
    private static async Task<long> RootFilesBytesAsync(ConsoleHost host) =>
        (await Task.WhenAll(Directory.GetFiles(Path.Combine(host.DataDir, "pool", "fedora-42"), "root*.qcow2")
            .Select(async f => (await QemuImg.InfoAsync(f)).ActualSizeBytes))).Sum();

    [Fact]
    public async Task A_compaction_while_qubes_read_the_old_revision_says_whom_it_waits_for_and_deletes_it_when_they_restart()
    {
        await using var tab = await browser.OpenConsoleAsync(extraArgs: "--DiskUsageInterval=1.00:00:00");
        var (host, page) = tab;
        await SucceedsAsync(host, JobKind.Update, "fedora-42");
        await ConsolePage.OpenAsync(page, "/templates/fedora-42");
        var rows = page.Locator("#revisions tr[data-revision]");
        await Expect(rows).ToHaveCountAsync(2);
        var rootUsage = page.Locator("#template-volumes tr[data-volume='root'] td[data-usage]");
        // The update's new revision is in the usage already, though the timer will not tick for a day.
        await Expect(rootUsage).ToHaveAttributeAsync("data-usage", (await RootFilesBytesAsync(host)).ToString());

        await page.Locator("#compact-root").ClickAsync();
        var box = page.Locator(".mud-dialog");
        await Expect(box).ToContainTextAsync("one still read by a running qube goes when that qube stops");
        await box.GetByRole(AriaRole.Button, new LocatorGetByRoleOptions { Name = "Compact", Exact = true }).ClickAsync();
        await Expect(box).ToHaveCountAsync(0);

        var waiting = page.Locator("[data-released-waiting='1']");
        await Expect(waiting).ToContainTextAsync("was let go of by a compaction and waits to be deleted: it goes when personal, sys-firewall, sys-net, work have stopped or restarted");
        await Expect(page.Locator("#revisions tr[data-revision='1'] [data-status='released']")).ToHaveTextAsync("to be deleted");
        await Expect(page.Locator("button[aria-label='Revert to revision 1']")).ToHaveCountAsync(0);
        var reclaimable = page.Locator("#reclaimable");
        await Expect(reclaimable).ToContainTextAsync("more is freed when revision 1 goes");
        await Expect(reclaimable).Not.ToContainTextAsync("nothing to reclaim");
        await Expect(rootUsage).ToHaveAttributeAsync("data-usage", (await RootFilesBytesAsync(host)).ToString());
        await Screenshots.SaveAsync(page, "compact-while-read");

        await page.Locator("#restart-template-outdated").ClickAsync();
        await Expect(page.Locator("#restart-outdated-dialog li[data-qube]")).ToHaveCountAsync(4);
        await page.Locator("#restart-outdated-confirm").ClickAsync();

        // The last restart lets revision 1 go; the page follows without a reload.
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.Locator("#revisions tr[data-revision='2']")).ToHaveAttributeAsync("data-current", "true");
        await Expect(waiting).ToHaveCountAsync(0);
        await FileReaper.IdleAsync();
        Assert.False(File.Exists(Path.Combine(host.DataDir, "pool", "fedora-42", RootFiles.Revision(1))));
        await Expect(rootUsage).ToHaveAttributeAsync("data-usage", (await RootFilesBytesAsync(host)).ToString());
        await Screenshots.SaveAsync(page, "compact-while-read-after-restart");

        var compaction = (await host.Get<JobEngine>().RecentAsync(30)).Single(j => JobKind.Compact.Is(j));
        await ConsolePage.OpenAsync(page, $"/tasks/{compaction.Id}");
        var log = page.Locator("#task-log .qw-log-text");
        await Expect(log.Filter(new LocatorFilterOptions { HasText = "Compacted revision 2 of fedora-42" })).ToHaveTextAsync(
            new System.Text.RegularExpressions.Regex(@"^Compacted revision 2 of fedora-42: its revisions took .+; they take .+ while old revision 1 \(.+\) is still read, then .+: won .+ once it is deleted\.$"));
        await Expect(log.Filter(new LocatorFilterOptions { HasText = "Deleted old revision 1" })).ToHaveTextAsync(
            new System.Text.RegularExpressions.Regex($@"^Deleted old revision 1 of fedora-42, let go of by compaction #{compaction.Id}, now that no running qube reads it: won [1-9][0-9.]* MiB; its revisions take .+ now \(they took .+\)\.$"));
        await Screenshots.SaveAsync(page, "compact-while-read-task");

        // The dashboard shows the update's time as the console shows times.
        await ConsolePage.OpenAsync(page, "/");
        await Expect(page.Locator("[data-testid='template-fedora-42'] [data-last-update] .qw-time"))
            .ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+ (s|min) ago$"));
    }
}
