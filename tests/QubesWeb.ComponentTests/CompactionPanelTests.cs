// What the template's page and the dashboard say after a compaction while a running qube still reads an old revision,
// and how they show times: rendered with bUnit over the real monitor, inventory, job engine and root volumes, on real
// qcow2 files; the hypervisor is the in-memory fake. fedora-42 has revision 1 (installed) and revision 2 (current,
// written on 1); work's root snapshot was made from revision 1, as a start before the update would have made it.
using Microsoft.Extensions.Options;
using QubesWeb.Components.Shared;
using QubesWeb.Services;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;
using DashboardPage = QubesWeb.Components.Pages.Dashboard.Dashboard;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;
using TemplateDetailPage = QubesWeb.Components.Pages.Templates.TemplateDetail;

namespace QubesWeb.ComponentTests;

public sealed class CompactionPanelTests : ConsoleTestContext
{
    private const long MiB = 1L << 20;
    private RootCompaction Compaction => Services.GetRequiredService<RootCompaction>();
    private RootLifecycle Lifecycle => Services.GetRequiredService<RootLifecycle>();

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var dir = Path.Combine(PoolDir, "fedora-42");
        Directory.CreateDirectory(Path.Combine(PoolDir, "work"));
        string Rev(int n) => Path.Combine(dir, RootFiles.Revision(n));
        Directory.CreateDirectory(dir);
        await QemuImg.CreateAsync(Rev(1), 64 * MiB);
        await QemuImg.WritePatternAsync(Rev(1), 0x51, 0, 8 * MiB);
        await RootStore.CreateOverlayAsync(Rev(1), Rev(2), PoolDir);
        await QemuImg.WritePatternAsync(Rev(2), 0xcd, 16 * MiB, 2 * MiB);
        var snapshot = Path.Combine(PoolDir, "work", RootFiles.Snapshot);
        await RootStore.CreateOverlayAsync(Rev(1), snapshot, PoolDir);

        await using var db = await Contexts.CreateDbContextAsync();
        var root = await RootVolumeAsync(db, "fedora-42");
        root.Path = Path.Combine(dir, RootFiles.Dirty);
        root.CurrentRevision = 2;
        foreach (var (n, reason, backing) in new[] { (1, "Installed", (int?)null), (2, "Update (dnf upgrade)", 1) })
            root.Revisions.Add(new RootRevision
            {
                Number = n, Path = Rev(n), Reason = reason, BackingNumber = backing, CreatedUtc = DateTime.UtcNow.AddHours(n - 3),
                SizeBytes = (await QemuImg.InfoAsync(Rev(n))).ActualSizeBytes, State = RevisionState.Committed,
            });
        var work = await RootVolumeAsync(db, "work");
        work.Path = snapshot;
        work.OverlaySourceVolumeId = root.Id;
        work.OverlayRevision = 1;
        work.OverlayCreatedUtc = DateTime.UtcNow;
        await db.SaveChangesAsync();
    }

    private IRenderedComponent<TemplateDetailPage> RenderTemplate()
    {
        RenderProviders();
        var cut = Render<TemplateDetailPage>(p => p.Add(x => x.Name, "fedora-42"));
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#revisions tr[data-revision]")), Wait);
        return cut;
    }

    private static List<string> RevisionRows(IRenderedComponent<TemplateDetailPage> cut) =>
        cut.FindAll("#revisions tr[data-revision]").Select(r => r.GetAttribute("data-revision")!).ToList();

    [Fact]
    public async Task After_a_compaction_the_panel_says_which_revision_waits_for_whom_never_nothing_to_reclaim_and_follows_its_deletion()
    {
        var cut = RenderTemplate();
        var rev1Bytes = (await QemuImg.InfoAsync(Path.Combine(PoolDir, "fedora-42", RootFiles.Revision(1)))).ActualSizeBytes;

        await Compaction.CompactAsync("fedora-42", qubeIsHalted: true, dropOldRevisions: true, jobId: null);

        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-released-waiting='1']")), Wait);
        var waiting = cut.Find("[data-released-waiting='1']").TextContent;
        Assert.Contains($"Revision 1 ({Format.Bytes(rev1Bytes)}) was let go of by a compaction and waits to be deleted", waiting);
        Assert.Contains("it goes when work stops or restarts (it runs on it).", waiting);
        var row1 = cut.Find("#revisions tr[data-revision='1']");
        Assert.Contains("to be deleted", row1.QuerySelectorAll("td")[4].TextContent);
        Assert.DoesNotContain("kept", row1.QuerySelectorAll("td")[4].TextContent);
        // No revert to it: the compaction said so.
        Assert.Empty(cut.FindAll("button[aria-label='Revert to revision 1']"));
        var reclaimable = cut.Find("#reclaimable").TextContent;
        Assert.DoesNotContain("nothing to reclaim", reclaimable);
        Assert.Contains($"{Format.Bytes(rev1Bytes)} more is freed when revision 1 goes", reclaimable);

        // work stops: its snapshot goes, and with it the last reader of revision 1.
        await Lifecycle.SettleStoppedAsync("work", "", DateTime.UtcNow);

        cut.WaitForAssertion(() => Assert.Equal(["2"], RevisionRows(cut)), Wait);
        Assert.Empty(cut.FindAll("[data-released-waiting]"));
        Assert.Contains("nothing to reclaim", cut.Find("#reclaimable").TextContent);
        // The Volumes panel shows the root's new usage (only revision 2's file now) once the measure the change asked for has run.
        var rev2Bytes = (await QemuImg.InfoAsync(Path.Combine(PoolDir, "fedora-42", RootFiles.Revision(2)))).ActualSizeBytes;
        cut.WaitForAssertion(() => Assert.Equal(rev2Bytes.ToString(), cut.Find("#template-volumes tr[data-volume='root'] td[data-usage]").GetAttribute("data-usage")), Wait);
    }

    private async Task SetUpdateTimesAsync(DateTime update, DateTime check) =>
        await Inventory.UpdateAsync("fedora-42", new QubeChanges(Features: new Dictionary<string, string?>
        {
            ["last-update"] = update.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            ["last-updates-check"] = check.ToString("yyyy-MM-ddTHH:mm:ssZ"),
        }));

    [Fact]
    public async Task The_dashboards_template_card_shows_update_times_as_relative_times_with_the_exact_time_on_hover()
    {
        var update = DateTime.UtcNow.AddMinutes(-5).AddSeconds(-10);
        var check = DateTime.UtcNow.AddHours(-2).AddMinutes(-1);
        await SetUpdateTimesAsync(update, check);

        var cut = Render<DashboardPage>();

        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-testid='template-fedora-42'] [data-last-update] .qw-time")), Wait);
        var card = cut.Find("[data-testid='template-fedora-42']");
        var last = card.QuerySelector("[data-last-update] .qw-time")!;
        Assert.Equal("5 min ago", last.TextContent.Trim());
        Assert.Equal(Format.FullTime(DateTime.SpecifyKind(update.AddTicks(-(update.Ticks % TimeSpan.TicksPerSecond)), DateTimeKind.Utc)), last.GetAttribute("title"));
        Assert.Equal("2 h ago", card.QuerySelector("[data-last-check] .qw-time")!.TextContent.Trim());
        Assert.DoesNotContain("Z", card.QuerySelector("[data-last-update]")!.TextContent);
        // debian-13 was never updated.
        Assert.Equal("Last update: never", cut.Find("[data-testid='template-debian-13'] [data-last-update]").TextContent.Trim());
    }

    [Fact]
    public async Task A_qubes_page_shows_its_update_times_beside_the_editable_values()
    {
        await SetUpdateTimesAsync(DateTime.UtcNow.AddSeconds(-30), DateTime.UtcNow.AddMinutes(-3));
        RenderProviders(dialogs: false, snackbars: false);

        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, "fedora-42"));

        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-feature-time='last-update'] .qw-time")), Wait);
        Assert.Matches("^[0-9]+ s ago$", cut.Find("[data-feature-time='last-update'] .qw-time").TextContent.Trim());
        Assert.Equal("3 min ago", cut.Find("[data-feature-time='last-updates-check'] .qw-time").TextContent.Trim());
        Assert.NotEmpty(cut.Find("[data-feature-time='last-update'] .qw-time").GetAttribute("title")!);
    }
}
