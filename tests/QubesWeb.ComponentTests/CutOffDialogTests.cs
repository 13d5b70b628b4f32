// Shutting down a netvm that running qubes use, as Qubes asks it ("sys-firewall is the netvm of running qubes work,
// personal: shut it down anyway?"), rendered with bUnit over the real inventory, monitor and job engine (the hypervisor
// is the in-memory fake): the question names who loses network and what becomes of them; Cancel queues nothing,
// confirming shuts the netvm down and leaves its clients running. The seeded estate: sys-net runs, with work on it.
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Components.Shared;
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Qubes;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;
using QubesListPage = QubesWeb.Components.Pages.Qubes.QubesList;

namespace QubesWeb.ComponentTests;

public sealed class CutOffDialogTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Equal("running", cut.Find("#qube-header [data-state]").GetAttribute("data-state")), Wait);
        return cut;
    }

    private string Sentence(string netvm) => Dialogs.Find($"[data-cut-off='{netvm}']").TextContent.Trim();

    private async Task<Task> ShutDownSysNetAsync(IRenderedComponent<QubeDetailPage> cut)
    {
        // The click's handler waits for the answer: it completes only once the dialog is answered.
        var clicked = await ClickFreshAsync(cut, () => cut.Find("button[aria-label='Shut down sys-net']"));
        Dialogs.WaitForAssertion(() => Assert.Equal("sys-net is the netvm of running qube work: shut it down anyway?", Sentence("sys-net")), Wait);
        return clicked;
    }

    [Fact]
    public async Task Shutting_down_a_netvm_with_a_running_client_asks_naming_it_and_cancel_stops_nothing()
    {
        var cut = RenderPage("sys-net");

        var clicked = await ShutDownSysNetAsync(cut);

        Assert.Equal("Shut down sys-net?", Dialogs.Find(".mud-dialog-title").TextContent.Trim());
        Assert.Equal("They keep running, without network until sys-net runs again.", Dialogs.Find("#cut-off-outcome").TextContent.Trim());
        Assert.Empty(await Jobs.RecentAsync(10));
        await Dialogs.Find("#cut-off-cancel").ClickAsync(new MouseEventArgs());
        await clicked.WaitAsync(Wait);

        Assert.Empty(Dialogs.FindAll("#cut-off-confirm"));
        Assert.Empty(await Jobs.RecentAsync(10));
        Assert.Equal(RunState.Running, Hypervisor.GetDomain("sys-net")!.State);
    }

    [Fact]
    public async Task Confirming_shuts_the_netvm_down_and_leaves_its_client_running()
    {
        var cut = RenderPage("sys-net");

        var clicked = await ShutDownSysNetAsync(cut);
        await Dialogs.Find("#cut-off-confirm").ClickAsync(new MouseEventArgs());
        await clicked.WaitAsync(Wait);

        cut.WaitForAssertion(() => Assert.Equal("halted", cut.Find("#qube-header [data-state]").GetAttribute("data-state")), Wait);
        var job = Assert.Single(await Jobs.RecentAsync(10));
        Assert.Equal(("shutdown", "sys-net"), (job.Kind, job.Target));
        Assert.Equal(JobState.Succeeded, (await Jobs.WaitAsync(job.Id, CancellationToken.None)).State);
        Assert.Equal(RunState.Running, Hypervisor.GetDomain("work")!.State);
    }

    [Fact]
    public async Task Killing_a_netvm_says_whom_it_cuts_off_in_its_confirmation()
    {
        var cut = RenderPage("sys-net");

        var clicked = await ClickFreshAsync(cut, () => cut.Find("button[aria-label='Kill sys-net']"));

        Dialogs.WaitForAssertion(() => Assert.Contains(
            "Running qubes lose their network through it: work; they keep running, without network until it runs again.", Dialogs.Markup), Wait);
        await Dialogs.FindAll("button").First(b => b.TextContent.Trim() == "Cancel").ClickAsync(new MouseEventArgs());
        await clicked.WaitAsync(Wait);
        Assert.Empty(await Jobs.RecentAsync(10));
    }

    [Fact]
    public async Task A_qube_no_running_qube_uses_shuts_down_without_a_question()
    {
        var cut = RenderPage("work");

        var clicked = await ClickFreshAsync(cut, () => cut.Find("button[aria-label='Shut down work']"));
        await clicked.WaitAsync(Wait);

        Assert.Empty(Dialogs.FindAll("#cut-off-confirm"));
        var job = Assert.Single(await Jobs.RecentAsync(10));
        Assert.Equal(("shutdown", "work"), (job.Kind, job.Target));
    }

    [Fact]
    public async Task The_question_names_the_qubes_behind_a_client_and_asks_once_for_several_netvms()
    {
        RenderProviders();
        var service = Services.GetRequiredService<IDialogService>();
        IDialogReference? shown = null;
        NetworkCutOff[] cutOffs =
        [
            new("sys-net", ["sys-firewall"], ["personal", "work"]),
            new("sys-vpn", ["banking", "mail"], []),
        ];

        await Dialogs.InvokeAsync(async () => shown = await service.ShowAsync<CutOffDialog>("Shut down netvms?",
            new DialogParameters<CutOffDialog> { { d => d.CutOffs, cutOffs } }));

        Dialogs.WaitForAssertion(() => Assert.Equal("sys-net is the netvm of running qube sys-firewall, and through it of personal, work.", Sentence("sys-net")), Wait);
        Assert.Equal("sys-vpn is the netvm of running qubes banking, mail.", Sentence("sys-vpn"));
        Assert.Contains("Shut them down anyway?", Dialogs.Markup);
        Assert.Equal("They keep running, each without network until its netvm runs again.", Dialogs.Find("#cut-off-outcome").TextContent.Trim());
        await Dialogs.Find("#cut-off-confirm").ClickAsync(new MouseEventArgs());
        Assert.False((await shown!.Result.WaitAsync(Wait))!.Canceled);
    }

    [Fact]
    public async Task A_bulk_shutdown_asks_only_about_clients_left_running_and_cancel_stops_nothing()
    {
        RenderProviders();
        var cut = Render<QubesListPage>();
        IElement? Row(string name) => cut.FindAll($"span.qw-name[data-qube='{name}']").FirstOrDefault()?.Closest("tr");
        cut.WaitForAssertion(() => Assert.NotNull(Row("sys-net")), Wait);

        // sys-net alone: work would be left without network, so the user is asked.
        Row("sys-net")!.QuerySelector("input[type=checkbox]")!.Change(true);
        var click = await ClickFreshAsync(cut, () => cut.Find("#bulk-shutdown"));
        Dialogs.WaitForAssertion(() => Assert.Equal("sys-net is the netvm of running qube work: shut it down anyway?", Sentence("sys-net")), Wait);
        await Dialogs.Find("#cut-off-cancel").ClickAsync(new MouseEventArgs());
        await click.WaitAsync(Wait);
        Assert.Empty(await Jobs.RecentAsync(10));

        // With work: nobody is left without network, nothing to ask; both shut down.
        cut.WaitForAssertion(() => Assert.NotNull(Row("work")!.QuerySelector("input[type=checkbox]")), Wait);
        Row("work")!.QuerySelector("input[type=checkbox]")!.Change(true);
        click = await ClickFreshAsync(cut, () => cut.Find("#bulk-shutdown"));
        await click.WaitAsync(Wait);
        Assert.Empty(Dialogs.FindAll("#cut-off-confirm"));
        var jobs = await Jobs.RecentAsync(10);
        Assert.Equal(["sys-net", "work"], jobs.Select(j => j.Target).Order(StringComparer.Ordinal));
        foreach (var job in jobs) Assert.Equal(JobState.Succeeded, (await Jobs.WaitAsync(job.Id, CancellationToken.None)).State);
    }
}
