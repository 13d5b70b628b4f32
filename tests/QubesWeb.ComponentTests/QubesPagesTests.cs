// The dashboard and the qubes list rendered with bUnit over the real monitor, inventory and job engine; the
// hypervisor is the in-memory fake, which raises lifecycle events as libvirt does.
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Components.Shared;
using QubesWeb.Services;
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Domains;
using DashboardPage = QubesWeb.Components.Pages.Dashboard.Dashboard;
using QubesListPage = QubesWeb.Components.Pages.Qubes.QubesList;

namespace QubesWeb.ComponentTests;

public sealed class QubesPagesTests : ConsoleTestContext
{
    private IRenderedComponent<QubesListPage> RenderList()
    {
        RenderProviders(dialogs: false);
        return Render<QubesListPage>();
    }

    private static IElement? RowOf(IRenderedComponent<QubesListPage> cut, string name) =>
        cut.FindAll($"span.qw-name[data-qube='{name}']").FirstOrDefault()?.Closest("tr");

    private static List<string> Names(IRenderedComponent<QubesListPage> cut) =>
        cut.FindAll("span.qw-name").Select(e => e.GetAttribute("data-qube")!).ToList();

    private static string Count(IRenderedComponent<DashboardPage> cut, string testId) =>
        cut.Find($"[data-testid='{testId}'] [data-count]").GetAttribute("data-count")!;

    [Fact]
    public void The_dashboard_counts_qubes_by_class_and_by_state_as_the_data_has_them()
    {
        var cut = Render<DashboardPage>();

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("2", Count(cut, "count-TemplateVM"));
            Assert.Equal("4", Count(cut, "count-AppVM"));
            Assert.Equal("1", Count(cut, "count-StandaloneVM"));
            Assert.Equal("0", Count(cut, "count-DispVM"));
            Assert.Equal("1", Count(cut, "count-AdminVM"));
            // dom0 always runs; sys-net and work were started.
            Assert.Equal("3", Count(cut, "state-running"));
            Assert.Equal("5", Count(cut, "state-halted"));
            Assert.Equal("0", Count(cut, "state-paused"));
        }, Wait);
    }

    [Fact]
    public void The_dashboard_shows_a_small_screen_of_each_running_qube_framed_in_its_label_and_follows_a_stop()
    {
        var cut = Render<DashboardPage>();
        string[] Framed() => cut.FindAll(".qw-screen-frame").Select(e => e.GetAttribute("data-qube")!).ToArray();

        // sys-net and work run; dom0 runs too but shows no screen here.
        cut.WaitForAssertion(() => Assert.Equal(["sys-net", "work"], Framed()), Wait);
        var work = cut.Find(".qw-screen-frame[data-qube='work'] img.qw-screen");
        Assert.Equal("qubes/work/screen", work.GetAttribute("data-src"));
        Assert.Equal("The screen of work", work.GetAttribute("alt"));
        Assert.Contains("border: 3px solid", cut.Find(".qw-screen-frame[data-qube='work']").GetAttribute("style"));
        Assert.Equal(["./dashboard/screens.js"], JSInterop.Invocations["import"].Select(i => (string)i.Arguments[0]!).ToArray());

        Hypervisor.SetState("work", RunState.Halted, DomainChangeKind.Stopped);

        cut.WaitForAssertion(() => Assert.Equal(["sys-net"], Framed()), Wait);
    }

    [Fact]
    public void The_dashboard_follows_a_state_change_and_lists_unmanaged_domains()
    {
        var cut = Render<DashboardPage>();
        cut.WaitForAssertion(() => Assert.Equal("3", Count(cut, "state-running")), Wait);
        string RunningOnFedora() => cut.Find("[data-testid='template-fedora-42'] [data-running]").GetAttribute("data-running")!;
        // sys-net and work.
        Assert.Equal("2", RunningOnFedora());

        Hypervisor.SetState("work", RunState.Paused, DomainChangeKind.Suspended);

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("2", Count(cut, "state-running"));
            Assert.Equal("1", Count(cut, "state-paused"));
            Assert.Equal("1", RunningOnFedora());
        }, Wait);
        Assert.Contains("None: every libvirt domain is a qube of the inventory.", cut.Markup);
    }

    [Fact]
    public void Each_row_shows_label_colour_name_class_state_template_netvm_memory_and_disk_usage()
    {
        var cut = RenderList();

        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "work")), Wait);
        var work = RowOf(cut, "work")!;
        var cells = work.QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Contains("background-color:#3465a4", work.QuerySelector(".qw-label-dot")!.GetAttribute("style")!.Replace(" ", ""));
        Assert.Equal("label blue", work.QuerySelector(".qw-label-dot")!.GetAttribute("aria-label"));
        Assert.Contains("work", cells);
        Assert.Contains("AppVM", cells);
        Assert.Equal("running", work.QuerySelector("[data-state]")!.GetAttribute("data-state"));
        Assert.Contains("fedora-42", cells);
        Assert.Contains("sys-net", cells);
        Assert.Contains("2000 MiB", cells);
        Assert.Contains(Format.Bytes(8L << 20), cells); // private 6 MiB + volatile 2 MiB

        var vault = RowOf(cut, "vault")!;
        var vaultCells = vault.QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Contains("background-color:#000000", vault.QuerySelector(".qw-label-dot")!.GetAttribute("style")!.Replace(" ", ""));
        Assert.Equal("halted", vault.QuerySelector("[data-state]")!.GetAttribute("data-state"));
        Assert.Contains("debian-13", vaultCells);
        Assert.Contains("none", vaultCells);
        Assert.Contains("400 MiB", vaultCells);

        var devbox = RowOf(cut, "devbox")!;
        Assert.Contains("StandaloneVM", devbox.QuerySelectorAll("td").Select(td => td.TextContent.Trim()));
        Assert.Contains("4000 MiB", devbox.QuerySelectorAll("td").Select(td => td.TextContent.Trim()));

        var dom0 = RowOf(cut, "dom0")!;
        Assert.Equal("running", dom0.QuerySelector("[data-state]")!.GetAttribute("data-state"));
        Assert.Contains("AdminVM", dom0.QuerySelectorAll("td").Select(td => td.TextContent.Trim()));
    }

    [Fact]
    public void Internal_qubes_are_hidden_until_the_switch_shows_them()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "work")), Wait);
        Assert.Null(RowOf(cut, "default-dvm"));
        Assert.Equal(7, Names(cut).Count);

        cut.Find("input[type='checkbox']").Change(true);

        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "default-dvm")), Wait);
        Assert.Equal(8, Names(cut).Count);
    }

    [Fact]
    public void Search_keeps_only_the_rows_that_match()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "work")), Wait);

        cut.Find("input[placeholder^='Search']").Input("debian");

        cut.WaitForAssertion(() => Assert.Equal(["debian-13", "vault"], Names(cut).Order()), Wait);

        cut.Find("input[placeholder^='Search']").Input("sys-net");

        // sys-net itself, and the qubes whose netvm it is (default-dvm stays hidden: it is internal).
        cut.WaitForAssertion(() => Assert.Equal(["devbox", "sys-net", "work"], Names(cut).Order()), Wait);

        cut.Find("input[placeholder^='Search']").Input("no-such-qube");

        cut.WaitForAssertion(() =>
        {
            Assert.Empty(Names(cut));
            Assert.Contains("No qube matches.", cut.Markup);
        }, Wait);
    }

    [Fact]
    public void A_state_change_raised_by_the_hypervisor_re_renders_the_row()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.Equal("halted", RowOf(cut, "vault")?.QuerySelector("[data-state]")?.GetAttribute("data-state")), Wait);

        Hypervisor.SetState("vault", RunState.Running, DomainChangeKind.Started);

        // The state cell and the actions cell each render when they take the change.
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("running", RowOf(cut, "vault")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
            Assert.NotNull(cut.Find("button[aria-label='Shut down vault']"));
        }, Wait);

        Hypervisor.SetState("vault", RunState.Paused, DomainChangeKind.Suspended);

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("paused", RowOf(cut, "vault")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
            Assert.NotNull(cut.Find("button[aria-label='Resume vault']"));
        }, Wait);
    }

    [Fact]
    public void A_state_change_renders_only_that_row_and_not_the_whole_list()
    {
        // What keeps many open tabs responsive under a stream of libvirt events: the page is not rendered again.
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "vault")), Wait);
        Dictionary<string, int> CellRenders() => cut.FindComponents<LiveRow>().GroupBy(c => c.Instance.Row.Name).ToDictionary(g => g.Key, g => g.Sum(c => c.RenderCount));
        var before = CellRenders();

        Hypervisor.SetState("vault", RunState.Running, DomainChangeKind.Started);

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("running", RowOf(cut, "vault")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
            Assert.NotNull(cut.Find("button[aria-label='Shut down vault']"));
        }, Wait);
        Assert.Equal("halted", RowOf(cut, "devbox")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
        var after = CellRenders();
        Assert.True(after["vault"] > before["vault"]);
        // Had the page rendered its grid again, every row's cells would have too.
        Assert.Equal(before.Where(kv => kv.Key != "vault"), after.Where(kv => kv.Key != "vault"));
    }

    [Fact]
    public void With_a_state_filter_a_qube_that_changes_state_leaves_or_joins_the_list()
    {
        RenderProviders(dialogs: false);
        Nav.NavigateTo("qubes?state=halted");
        var cut = Render<QubesListPage>();
        cut.WaitForAssertion(() => Assert.Contains("vault", Names(cut)), Wait);
        var shown = Names(cut).Count;

        Hypervisor.SetState("vault", RunState.Running, DomainChangeKind.Started);

        cut.WaitForAssertion(() => Assert.DoesNotContain("vault", Names(cut)), Wait);
        Assert.Equal(shown - 1, Names(cut).Count);
        Assert.StartsWith($"{shown - 1} of ", cut.Find("#qube-count").TextContent.Trim());

        Hypervisor.SetState("vault", RunState.Halted, DomainChangeKind.Stopped);

        cut.WaitForAssertion(() => Assert.Contains("vault", Names(cut)), Wait);
    }

    [Fact]
    public void Sorted_by_state_a_qube_that_changes_state_moves_in_the_list()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "vault")), Wait);
        var stateHeader = cut.FindAll("th").First(th => th.TextContent.Trim().StartsWith("State", StringComparison.Ordinal));
        stateHeader.QuerySelector(".sortable-column-header")!.Click();
        // Ascending: halted before running.
        cut.WaitForAssertion(() => Assert.True(Names(cut).IndexOf("vault") < Names(cut).IndexOf("work")), Wait);

        Hypervisor.SetState("work", RunState.Halted, DomainChangeKind.Stopped);
        Hypervisor.SetState("vault", RunState.Running, DomainChangeKind.Started);

        cut.WaitForAssertion(() => Assert.True(Names(cut).IndexOf("work") < Names(cut).IndexOf("vault")), Wait);
    }

    [Fact]
    public async Task Clicking_start_enqueues_a_start_job_which_runs_the_qube()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("button[aria-label='Start vault']")), Wait);

        await cut.Find("button[aria-label='Start vault']").ClickAsync(new MouseEventArgs());

        var job = Assert.Single(await Jobs.RecentAsync(10));
        Assert.Equal("start", job.Kind);
        Assert.Equal("vault", job.Target);
        Succeeded(await FinishedAsync(Services, job.Id, Wait));
        cut.WaitForAssertion(() => Assert.Equal("running", RowOf(cut, "vault")!.QuerySelector("[data-state]")!.GetAttribute("data-state")), Wait);
    }

    [Fact]
    public async Task Clicking_start_on_a_qube_locked_by_another_job_shows_the_conflict_and_queues_nothing()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("button[aria-label='Start vault']")), Wait);
        long holder;
        await using (var db = await Contexts.CreateDbContextAsync())
        {
            var job = new Job { Kind = "shutdown", Target = "vault", State = JobState.Running, CreatedUtc = DateTime.UtcNow };
            db.Jobs.Add(job);
            await db.SaveChangesAsync();
            db.Locks.Add(new QubeLock { QubeName = "vault", JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
            await db.SaveChangesAsync();
            holder = job.Id;
        }

        await cut.Find("button[aria-label='Start vault']").ClickAsync(new MouseEventArgs());

        Snackbars.WaitForAssertion(() => Assert.Contains($"job #{holder} (Shutdown vault) holds its lock", Snackbars.Markup), Wait);
        Assert.Equal([holder], (await Jobs.RecentAsync(50)).Select(j => j.Id));
    }

    [Fact]
    public async Task Clicking_start_says_which_task_was_queued()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("button[aria-label='Start vault']")), Wait);

        await cut.Find("button[aria-label='Start vault']").ClickAsync(new MouseEventArgs());

        var job = Assert.Single(await Jobs.RecentAsync(10));
        Snackbars.WaitForAssertion(() => Assert.Contains($"Start vault: task #{job.Id} queued.", Snackbars.Markup), Wait);
    }

    private static void Select(IRenderedComponent<QubesListPage> cut, string name) =>
        RowOf(cut, name)!.QuerySelector("input[type=checkbox]")!.Change(true);

    [Fact]
    public async Task A_bulk_start_queues_one_job_per_selected_qube_and_names_the_ones_it_cannot_start()
    {
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "vault")), Wait);

        Select(cut, "vault");
        Select(cut, "devbox");
        Select(cut, "work"); // already running: refused with the reason, the others go ahead
        cut.WaitForAssertion(() => Assert.Contains("3", cut.Find("#bulk-bar").TextContent), Wait);

        await cut.Find("#bulk-start").ClickAsync(new MouseEventArgs());

        var jobs = await Jobs.RecentAsync(10);
        Assert.Equal(["devbox", "vault"], jobs.Select(j => j.Target).Order());
        Assert.All(jobs, j => Assert.Equal("start", j.Kind));
        Snackbars.WaitForAssertion(() => Assert.Contains("'work' is already running.", Snackbars.Markup), Wait);
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("running", RowOf(cut, "vault")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
            Assert.Equal("running", RowOf(cut, "devbox")!.QuerySelector("[data-state]")!.GetAttribute("data-state"));
            Assert.Empty(cut.FindAll("#bulk-bar"));
        }, Wait);
    }

    [Fact]
    public async Task A_bulk_kill_asks_first_and_cancelling_kills_nothing()
    {
        var dialogs = Render<MudDialogProvider>();
        var cut = RenderList();
        cut.WaitForAssertion(() => Assert.NotNull(RowOf(cut, "work")), Wait);
        Select(cut, "work");
        Select(cut, "sys-net");
        cut.WaitForAssertion(() => Assert.Contains("2", cut.Find("#bulk-bar").TextContent), Wait);

        var click = cut.Find("#bulk-kill").ClickAsync(new MouseEventArgs());
        dialogs.WaitForAssertion(() => Assert.Contains("Kill 2 qubes?", dialogs.Markup), Wait);
        var cancel = dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel");
        await cancel.ClickAsync(new MouseEventArgs());
        await click;

        Assert.Empty(await Jobs.RecentAsync(10));
        Assert.Equal(RunState.Running, Hypervisor.GetDomain("work")!.State);
    }
}
