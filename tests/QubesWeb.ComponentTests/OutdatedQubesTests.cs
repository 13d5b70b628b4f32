// Template root revisions and outdated qubes as the console shows them, rendered with bUnit over the real monitor,
// inventory and job engine; the hypervisor is the in-memory fake. The seed's fedora-42 gets two committed revisions
// (2 current, 1 older), and its AppVMs sys-net (a service qube), personal and work get the root snapshot a start
// would have made; each test says which revision each snapshot was made from, as the inventory records it.
using QubesWeb.Services.Jobs;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;
using DashboardPage = QubesWeb.Components.Pages.Dashboard.Dashboard;
using QubesListPage = QubesWeb.Components.Pages.Qubes.QubesList;
using TemplateDetailPage = QubesWeb.Components.Pages.Templates.TemplateDetail;

namespace QubesWeb.ComponentTests;

public sealed class OutdatedQubesTests : ConsoleTestContext
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        // personal: a second running AppVM on fedora-42 that provides no network, named before sys-net.
        await Inventory.CreateAsync(new NewQube("personal", QubeClass.AppVM, "yellow", "fedora-42", "sys-net"));
        await Estate.ReconcileAsync();
        Hypervisor.Start("personal");
        await Estate.WaitForStateAsync("personal", s => s == RunState.Running, Wait, CancellationToken.None);
        await GiveFedoraTwoRevisionsAsync();
    }

    /// <summary>fedora-42's root: revision 1 (installed) and revision 2 (committed at shutdown, current), with their files.</summary>
    private async Task GiveFedoraTwoRevisionsAsync()
    {
        var dir = Path.Combine(PoolDir, "fedora-42");
        Directory.CreateDirectory(dir);
        await using var db = await Contexts.CreateDbContextAsync();
        var root = await RootVolumeAsync(db, "fedora-42");
        root.CurrentRevision = 2;
        root.RevisionsToKeep = 1;
        foreach (var (number, reason, backing, age) in new[] { (1, "Installed", (int?)null, 3), (2, "Committed at shutdown", 1, 1) })
        {
            var path = Path.Combine(dir, RootFiles.Revision(number));
            await File.WriteAllBytesAsync(path, []);
            root.Revisions.Add(new RootRevision
            {
                Number = number, Path = path, Reason = reason, BackingNumber = backing, SizeBytes = number * 4L << 20,
                CreatedUtc = DateTime.UtcNow.AddHours(-age), State = RevisionState.Committed,
            });
        }
        await db.SaveChangesAsync();
    }

    /// <summary>Records that <paramref name="qube"/>'s root snapshot was made from fedora-42's <paramref name="revision"/>, as a start does.</summary>
    private async Task SnapshotOfFedoraAsync(string qube, int revision)
    {
        await using var db = await Contexts.CreateDbContextAsync();
        var fedoraRoot = await db.Volumes.Where(v => v.Kind == VolumeKind.Root && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == "fedora-42"))
            .Select(v => v.Id).SingleAsync();
        var owner = await db.Qubes.Include(q => q.Volumes).SingleAsync(q => q.Name == qube);
        var root = owner.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Root);
        if (root is null)
        {
            root = new Volume { Kind = VolumeKind.Root, VirtualSizeBytes = 10L << 30 };
            owner.Volumes.Add(root);
        }
        root.OverlaySourceVolumeId = fedoraRoot;
        root.OverlayRevision = revision;
        root.OverlayCreatedUtc = DateTime.UtcNow;
        await db.SaveChangesAsync();
    }

    private async Task StartTemplateAsync()
    {
        Hypervisor.Start("fedora-42");
        await Estate.WaitForStateAsync("fedora-42", s => s == RunState.Running, Wait, CancellationToken.None);
    }

    private IRenderedComponent<QubesListPage> RenderList(string url = "qubes")
    {
        RenderProviders();
        Nav.NavigateTo(url);
        var cut = Render<QubesListPage>();
        cut.WaitForAssertion(() => Assert.NotEmpty(Names(cut)), Wait);
        return cut;
    }

    private static IElement? RowOf(IRenderedComponent<QubesListPage> cut, string name) =>
        cut.FindAll($"span.qw-name[data-qube='{name}']").FirstOrDefault()?.Closest("tr");

    private static List<string> Names(IRenderedComponent<QubesListPage> cut) =>
        cut.FindAll("span.qw-name").Select(e => e.GetAttribute("data-qube")!).ToList();

    /// <summary>The staleness mark beside a qube's state ("outdated", "to-be-outdated"), or null when there is none.</summary>
    private static string? MarkOf(IRenderedComponent<QubesListPage> cut, string name) =>
        RowOf(cut, name)?.QuerySelector("[data-staleness]")?.GetAttribute("data-staleness");

    private static Dictionary<string, string?> Marks(IRenderedComponent<QubesListPage> cut) =>
        Names(cut).ToDictionary(n => n, n => MarkOf(cut, n));

    // ---- the qubes list ----

    [Fact]
    public async Task Only_the_running_AppVM_whose_snapshot_is_of_an_older_template_revision_is_marked_outdated()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 2);
        await SnapshotOfFedoraAsync("personal", 2);

        var cut = RenderList();

        cut.WaitForAssertion(() => Assert.Equal("outdated", MarkOf(cut, "work")), Wait);
        Assert.Equal(["work"], Marks(cut).Where(m => m.Value is not null).Select(m => m.Key));
        var icon = RowOf(cut, "work")!.QuerySelector("[data-staleness]")!;
        Assert.StartsWith("Outdated: its template changed since it started", icon.GetAttribute("aria-label"));
        // The mark sits in the state cell, beside the run state.
        Assert.NotNull(icon.Closest("td")!.QuerySelector("[data-state='running']"));
    }

    [Fact]
    public async Task The_outdated_filter_from_the_url_shows_only_the_outdated_qubes()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 1);
        await SnapshotOfFedoraAsync("personal", 2);

        var cut = RenderList("qubes?state=outdated");

        cut.WaitForAssertion(() => Assert.Equal(["sys-net", "work"], Names(cut).Order()), Wait);
        Assert.All(Names(cut), n => Assert.Equal("outdated", MarkOf(cut, n)));
        Assert.Equal("2 of 9 qubes shown", cut.Find("#qube-count").TextContent.Trim());
    }

    [Fact]
    public async Task A_halted_qube_is_never_marked_even_with_a_stale_snapshot_recorded()
    {
        await SnapshotOfFedoraAsync("work", 1);
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.Equal("outdated", MarkOf(cut, "work")), Wait);

        // Stopped outside the console: until its volumes are settled the inventory still records the old snapshot.
        Hypervisor.SetState("work", RunState.Halted, DomainChangeKind.Stopped);

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("halted", RowOf(cut, "work")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
            Assert.Null(MarkOf(cut, "work"));
        }, Wait);
        Assert.All(Marks(cut).Values, Assert.Null);
    }

    [Fact]
    public async Task While_the_template_runs_its_running_qubes_on_the_current_revision_are_to_be_outdated()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 2);
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.Equal("outdated", MarkOf(cut, "work")), Wait);
        Assert.Null(MarkOf(cut, "sys-net"));

        await StartTemplateAsync();

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("to-be-outdated", MarkOf(cut, "sys-net"));
            Assert.Equal("to-be-outdated", MarkOf(cut, "personal"));
            Assert.Equal("outdated", MarkOf(cut, "work")); // already outdated: that mark wins
        }, Wait);
        Assert.Null(MarkOf(cut, "vault")); // halted, and on debian-13
        Assert.Null(MarkOf(cut, "fedora-42"));
        Assert.StartsWith("To be outdated: its template is running",
            RowOf(cut, "sys-net")!.QuerySelector("[data-staleness]")!.GetAttribute("aria-label"));
    }

    [Fact]
    public async Task The_to_be_outdated_filter_shows_only_those_qubes()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 2);
        await SnapshotOfFedoraAsync("personal", 2);
        await StartTemplateAsync();

        var cut = RenderList("qubes?state=tobeoutdated");

        cut.WaitForAssertion(() => Assert.Equal(["personal", "sys-net"], Names(cut).Order()), Wait);
        Assert.All(Names(cut), n => Assert.Equal("to-be-outdated", MarkOf(cut, n)));
    }

    // ---- the dashboard ----

    private static IElement? Banner(IRenderedComponent<DashboardPage> cut) => cut.FindAll("#outdated-banner").FirstOrDefault();

    [Fact]
    public async Task The_dashboard_banner_counts_the_outdated_and_the_to_be_outdated_qubes()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 1);
        await SnapshotOfFedoraAsync("personal", 2);
        RenderProviders();

        var cut = Render<DashboardPage>();

        cut.WaitForAssertion(() => Assert.NotNull(Banner(cut)), Wait);
        Assert.Equal("2", Banner(cut)!.QuerySelector("[data-outdated]")!.GetAttribute("data-outdated"));
        Assert.Contains("2 running qube(s) are outdated", Banner(cut)!.TextContent);
        Assert.Null(Banner(cut)!.QuerySelector("[data-to-be-outdated]"));
        Assert.Equal("/qubes?state=outdated", cut.Find("#show-outdated").GetAttribute("href"));
        Assert.False(cut.Find("#restart-all-outdated").HasAttribute("disabled"));
        // fedora-42's card counts its outdated qubes too.
        Assert.Equal("2", cut.Find("[data-testid='template-fedora-42'] [data-outdated]").GetAttribute("data-outdated"));
        Assert.Equal("0", cut.Find("[data-testid='template-debian-13'] [data-outdated]").GetAttribute("data-outdated"));

        await StartTemplateAsync();

        cut.WaitForAssertion(() => Assert.Equal("1", Banner(cut)?.QuerySelector("[data-to-be-outdated]")?.GetAttribute("data-to-be-outdated")), Wait);
        Assert.Contains("1 will be outdated when their running template shuts down", Banner(cut)!.TextContent);
        Assert.Equal("2", Banner(cut)!.QuerySelector("[data-outdated]")!.GetAttribute("data-outdated"));
    }

    [Fact]
    public async Task There_is_no_banner_when_every_running_qube_is_on_its_templates_current_revision()
    {
        await SnapshotOfFedoraAsync("work", 2);
        await SnapshotOfFedoraAsync("sys-net", 2);
        await SnapshotOfFedoraAsync("personal", 2);

        var cut = Render<DashboardPage>();

        cut.WaitForAssertion(() => Assert.Equal("4", cut.Find("[data-testid='state-running'] [data-count]").GetAttribute("data-count")), Wait);
        Assert.Null(Banner(cut));
        Assert.Empty(cut.FindAll("#restart-all-outdated"));
        Assert.Equal("0", cut.Find("[data-testid='template-fedora-42'] [data-outdated]").GetAttribute("data-outdated"));
    }

    [Fact]
    public async Task The_banner_goes_once_the_outdated_qubes_stop()
    {
        await SnapshotOfFedoraAsync("work", 1);
        var cut = Render<DashboardPage>();
        cut.WaitForAssertion(() => Assert.NotNull(Banner(cut)), Wait);

        Hypervisor.SetState("work", RunState.Halted, DomainChangeKind.Stopped);

        cut.WaitForAssertion(() => Assert.Null(Banner(cut)), Wait);
    }

    // ---- the restart-outdated dialog ----

    private async Task<(IRenderedComponent<DashboardPage> Page, Task Click)> OpenRestartDialogAsync()
    {
        RenderProviders();
        var cut = Render<DashboardPage>();
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#restart-all-outdated")), Wait);
        // The click's handler waits for the dialog's answer: it completes only once the dialog closes.
        var click = await ClickFreshAsync(cut, () => cut.Find("#restart-all-outdated"));
        Dialogs.WaitForAssertion(() => Assert.NotEmpty(Dialogs.FindAll("#restart-outdated-dialog li[data-qube], #nothing-outdated, #template-still-running")), Wait);
        return (cut, click);
    }

    private List<string> DialogOrder() =>
        Dialogs.FindAll("#restart-outdated-dialog li[data-qube]").Select(li => li.GetAttribute("data-qube")!).ToList();

    [Fact]
    public async Task The_restart_dialog_lists_the_service_qube_first_then_the_others_by_name()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 1);
        await SnapshotOfFedoraAsync("personal", 1);

        var (_, click) = await OpenRestartDialogAsync();

        Dialogs.WaitForAssertion(() => Assert.Equal(["sys-net", "personal", "work"], DialogOrder()), Wait);
        Assert.Contains("Restart all outdated qubes", Dialogs.Markup);
        Assert.Contains("(service)", Dialogs.Find("li[data-qube='sys-net']").TextContent);
        Assert.DoesNotContain("(service)", Dialogs.Find("li[data-qube='work']").TextContent);
        // fedora-42 is halted: its changes are committed, nothing to shut down first.
        Assert.Empty(Dialogs.FindAll("#shutdown-template-first"));
        Assert.Empty(Dialogs.FindAll("#template-still-running"));
        Assert.False(Dialogs.Find("#restart-outdated-confirm").HasAttribute("disabled"));

        await await ClickFreshAsync(Dialogs, () => Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel"));
        await click.WaitAsync(Wait);
        Assert.Empty(await Jobs.RecentAsync(10));
    }

    [Fact]
    public async Task A_qube_with_restart_after_update_off_is_left_alone_and_named()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("personal", 1);
        await Inventory.UpdateAsync("personal", new QubeChanges(Features: new Dictionary<string, string?> { ["restart-after-update"] = "false" }));

        var (_, click) = await OpenRestartDialogAsync();

        Dialogs.WaitForAssertion(() => Assert.Equal(["work"], DialogOrder()), Wait);
        Assert.Contains("personal", Dialogs.Find("#left-alone").TextContent);
        await await ClickFreshAsync(Dialogs, () => Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel"));
        await click.WaitAsync(Wait);
    }

    [Fact]
    public async Task When_the_template_still_runs_the_dialog_offers_to_shut_it_down_first()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 2);
        await StartTemplateAsync();

        var (_, click) = await OpenRestartDialogAsync();

        Dialogs.WaitForAssertion(() => Assert.NotNull(Dialogs.Find("#template-still-running")), Wait);
        Assert.Contains("fedora-42 is still running", Dialogs.Find("#template-still-running").TextContent);
        // The offer is a checkbox, ticked by default, labelled with what it does.
        var offer = Dialogs.Find("input#shutdown-template-first");
        Assert.True(offer.HasAttribute("checked"));
        Assert.Contains("Shut down fedora-42 first, then restart", offer.Closest("label")!.TextContent);
        Assert.Equal(["work"], DialogOrder());
        Assert.False(Dialogs.Find("#restart-outdated-confirm").HasAttribute("disabled"));

        await await ClickFreshAsync(Dialogs, () => Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel"));
        await click.WaitAsync(Wait);
        Assert.Empty(await Jobs.RecentAsync(10));
    }

    [Fact]
    public async Task With_only_to_be_outdated_qubes_restart_needs_the_template_shut_down_first()
    {
        await SnapshotOfFedoraAsync("work", 2);
        await StartTemplateAsync();

        var (_, click) = await OpenRestartDialogAsync();

        Dialogs.WaitForAssertion(() => Assert.NotNull(Dialogs.Find("input#shutdown-template-first")), Wait);
        Assert.Empty(DialogOrder());
        Assert.False(Dialogs.Find("#restart-outdated-confirm").HasAttribute("disabled"));

        await Dialogs.Find("input#shutdown-template-first").ChangeAsync(new ChangeEventArgs { Value = false });

        // Nothing is outdated yet: without the shutdown there is nothing to restart.
        Dialogs.WaitForAssertion(() => Assert.True(Dialogs.Find("#restart-outdated-confirm").HasAttribute("disabled")), Wait);
        await await ClickFreshAsync(Dialogs, () => Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel"));
        await click.WaitAsync(Wait);
    }

    [Fact]
    public async Task Confirming_queues_one_restart_outdated_task_which_restarts_them_service_qube_first()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 1);
        var (_, click) = await OpenRestartDialogAsync();
        Dialogs.WaitForAssertion(() => Assert.Equal(["sys-net", "work"], DialogOrder()), Wait);

        await await ClickFreshAsync(Dialogs, () => Dialogs.Find("#restart-outdated-confirm"));
        await click.WaitAsync(Wait);

        var job = (await Jobs.RecentAsync(10)).Single(j => JobKind.RestartOutdated.Is(j));
        Assert.Equal(QubeRules.AdminVmName, job.Target);
        Snackbars.WaitForAssertion(() => Assert.Contains($"Restart all outdated qubes: task #{job.Id} queued.", Snackbars.Markup), Wait);
        var done = Succeeded(await FinishedAsync(Services, job.Id, Wait));
        var restarts = (await Jobs.RecentAsync(10)).Where(j => JobKind.Restart.Is(j)).OrderBy(j => j.Id).Select(j => j.Target).ToList();
        Assert.Equal(["sys-net", "work"], restarts);
        Assert.Contains(done.Log, l => l.Text == "Restarting 2 outdated qube(s): sys-net, work.");
    }

    // ---- the revisions panel ----

    private IRenderedComponent<TemplateDetailPage> RenderTemplate(string name)
    {
        RenderProviders();
        var cut = Render<TemplateDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#revisions-panel")), Wait);
        return cut;
    }

    private static List<string> RevisionRows(IRenderedComponent<TemplateDetailPage> cut) =>
        cut.FindAll("#revisions tr[data-revision]").Select(r => r.GetAttribute("data-revision")!).ToList();

    private static IElement RevisionRow(IRenderedComponent<TemplateDetailPage> cut, int number) =>
        cut.Find($"#revisions tr[data-revision='{number}']");

    private static IElement? RevertButton(IRenderedComponent<TemplateDetailPage> cut, int number) =>
        cut.FindAll($"button[aria-label='Revert to revision {number}']").FirstOrDefault();

    [Fact]
    public async Task The_revisions_panel_lists_the_revisions_newest_first_with_the_current_one_marked()
    {
        await SnapshotOfFedoraAsync("work", 1);
        await SnapshotOfFedoraAsync("sys-net", 2);

        var cut = RenderTemplate("fedora-42");

        cut.WaitForAssertion(() => Assert.Equal(["2", "1"], RevisionRows(cut)), Wait);
        var two = RevisionRow(cut, 2);
        Assert.Equal("true", two.GetAttribute("data-current"));
        Assert.Contains("current", two.QuerySelectorAll("td")[4].TextContent);
        Assert.Contains("Committed at shutdown", two.TextContent);
        Assert.Contains("sys-net", two.QuerySelectorAll("td")[5].TextContent);
        Assert.Null(RevertButton(cut, 2)); // the current one cannot be reverted to

        var one = RevisionRow(cut, 1);
        Assert.Equal("false", one.GetAttribute("data-current"));
        Assert.Contains("kept", one.QuerySelectorAll("td")[4].TextContent);
        Assert.DoesNotContain("current", one.QuerySelectorAll("td")[4].TextContent);
        Assert.Contains("Installed", one.TextContent);
        Assert.Equal("work", one.QuerySelectorAll("td")[5].TextContent.Trim());
        Assert.False(RevertButton(cut, 1)!.HasAttribute("disabled"));
        // The template's own tree marks work as outdated.
        Assert.Equal("outdated", cut.Find("[data-dependent='work'] [data-staleness]").GetAttribute("data-staleness"));
        Assert.Equal("1", cut.Find("#outdated-count").TextContent.Trim());
    }

    [Fact]
    public async Task Revert_is_disabled_while_the_template_runs_and_enabled_again_when_it_stops()
    {
        var cut = RenderTemplate("fedora-42");
        cut.WaitForAssertion(() => Assert.False(RevertButton(cut, 1)!.HasAttribute("disabled")), Wait);

        await StartTemplateAsync();

        cut.WaitForAssertion(() => Assert.True(RevertButton(cut, 1)!.HasAttribute("disabled")), Wait);
        Assert.Equal("Shut fedora-42 down to revert", RevertButton(cut, 1)!.GetAttribute("title"));

        Hypervisor.Shutdown("fedora-42");

        cut.WaitForAssertion(() => Assert.False(RevertButton(cut, 1)!.HasAttribute("disabled")), Wait);
    }

    [Fact]
    public async Task Reverting_asks_first_then_makes_the_older_revision_current_and_the_running_qubes_outdated()
    {
        await SnapshotOfFedoraAsync("work", 2);
        var cut = RenderTemplate("fedora-42");
        cut.WaitForAssertion(() => Assert.NotNull(RevertButton(cut, 1)), Wait);
        Assert.Empty(cut.FindAll("[data-dependent='work'] [data-staleness]"));

        var click = await ClickFreshAsync(cut, () => RevertButton(cut, 1)!);
        Dialogs.WaitForAssertion(() => Assert.Contains("Revert fedora-42 to revision 1?", Dialogs.Markup), Wait);
        Assert.Contains("revision 2 is kept, so this can be undone", Dialogs.Markup);
        Assert.Empty(await Jobs.RecentAsync(10));
        await await ClickFreshAsync(Dialogs, () => Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Revert"));
        await click.WaitAsync(Wait);

        var job = Assert.Single(await Jobs.RecentAsync(10));
        Assert.Equal((JobKind.Revert.Name, "fedora-42"), (job.Kind, job.Target));
        Snackbars.WaitForAssertion(() => Assert.Contains($"Revert fedora-42 to revision 1: task #{job.Id} queued.", Snackbars.Markup), Wait);
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("true", RevisionRow(cut, 1).GetAttribute("data-current"));
            Assert.Equal("false", RevisionRow(cut, 2).GetAttribute("data-current"));
            Assert.NotNull(RevertButton(cut, 2));
            Assert.Null(RevertButton(cut, 1));
            Assert.Equal("outdated", cut.Find("[data-dependent='work'] [data-staleness]").GetAttribute("data-staleness"));
        }, Wait);
        Assert.Equal(["2", "1"], RevisionRows(cut));
    }

    [Fact]
    public async Task Cancelling_the_revert_question_changes_nothing()
    {
        var cut = RenderTemplate("fedora-42");
        cut.WaitForAssertion(() => Assert.NotNull(RevertButton(cut, 1)), Wait);

        var click = await ClickFreshAsync(cut, () => RevertButton(cut, 1)!);
        Dialogs.WaitForAssertion(() => Assert.Contains("Revert fedora-42 to revision 1?", Dialogs.Markup), Wait);
        await await ClickFreshAsync(Dialogs, () => Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel"));
        await click.WaitAsync(Wait);

        Assert.Empty(await Jobs.RecentAsync(10));
        Assert.Equal("true", RevisionRow(cut, 2).GetAttribute("data-current"));
        Assert.Equal(2, (await Services.GetRequiredService<RootRevisions>().HistoryAsync("fedora-42"))!.Current);
    }
}
