// The independence card of a standalone's or template's page: an instant copy's states (copying with how much is
// copied, queued, paused, stopped, independent) from its parameters, and on the real page over the real inventory,
// job engine and qemu-img, a copy paused and resumed from its buttons, and a small one seen reaching independence.
using System.Globalization;
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Components.Pages.Qubes;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;
using DashboardPage = QubesWeb.Components.Pages.Dashboard.Dashboard;

namespace QubesWeb.ComponentTests;

public sealed class QubeIndependenceTests : ConsoleTestContext
{
    private const long GiB = 1L << 30;
    private static readonly RootDependency OnFedora = new("dev", "fedora-42", 7, 1, false);

    private static Job DetachJob(JobState state, int progress) =>
        new() { Id = 5, Kind = JobKind.Detach.Name, Target = "dev", State = state, Progress = progress, CreatedUtc = DateTime.UtcNow };

    private IRenderedComponent<QubeIndependence> Card(RootDependency? dependency, Job? active) =>
        Render<QubeIndependence>(p => p.Add(x => x.Dependency, dependency).Add(x => x.Active, active));

    [Fact]
    public void A_running_copy_says_what_it_depends_on_and_how_much_is_copied()
    {
        // The job maps the copy's percent onto 1-95 of its own progress: at 42 it has copied 43%.
        var cut = Card(OnFedora, DetachJob(JobState.Running, 42));

        Assert.Equal("copying", cut.Find("#qube-independence").GetAttribute("data-state"));
        Assert.Equal("Depends on fedora-42 revision 7, 43% copied", cut.Find("#independence-text").TextContent.Trim());
        Assert.Equal("43", cut.Find("#independence-text").GetAttribute("data-copied"));
        Assert.Contains("a start waits at most for that swap", cut.Find("#independence-note").TextContent);
        Assert.Single(cut.FindAll("#independence-pause"));
        Assert.Empty(cut.FindAll("#independence-resume"));
    }

    [Theory]
    [InlineData("queued", "Depends on fedora-42 revision 7, copy queued", "#independence-pause")]
    [InlineData("paused", "Depends on fedora-42 revision 7, copy paused", "#independence-resume")]
    [InlineData("stopped", "Depends on fedora-42 revision 7, copy stopped (see its task)", "#independence-resume")]
    public void A_copy_not_running_says_why_and_offers_what_can_be_done(string state, string text, string button)
    {
        var cut = Card(OnFedora with { Paused = state == "paused" }, state == "queued" ? DetachJob(JobState.Queued, 0) : null);

        Assert.Equal(state, cut.Find("#qube-independence").GetAttribute("data-state"));
        Assert.Equal(text, cut.Find("#independence-text").TextContent.Trim());
        Assert.Single(cut.FindAll(button));
        if (state == "paused") Assert.Equal("Resume the copy", cut.Find(button).TextContent.Trim());
    }

    [Fact]
    public void An_independent_root_says_so_with_no_buttons()
    {
        var cut = Card(null, null);
        Assert.Equal("independent", cut.Find("#qube-independence").GetAttribute("data-state"));
        Assert.Equal("Independent: its root reads nothing from another qube.", cut.Find("#independence-text").TextContent.Trim());
        Assert.Empty(cut.FindAll("button"));
    }

    /// <summary>A template whose root qemu-img counts as <paramref name="size"/> of data, on a sparse raw data file: its detach takes a while.</summary>
    private async Task AddTemplateOnSparseDataAsync(string name, long size)
    {
        var dir = Directory.CreateDirectory(Path.Combine(PoolDir, name)).FullName;
        var path = Path.Combine(dir, RootFiles.Revision(1));
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath,
        [
            "create", "-q", "-f", "qcow2", "-o",
            $"data_file={Path.Combine(dir, "data.raw")},data_file_raw=on,preallocation=metadata,cluster_size=2M",
            "--", path, size.ToString(CultureInfo.InvariantCulture),
        ]);
        var info = await QemuImg.InfoAsync(path);
        await Inventory.CreateAsync(new NewQube(name, QubeClass.TemplateVM, "black", Volumes:
        [
            new NewVolume(VolumeKind.Root, Path.Combine(dir, RootFiles.Dirty), info.VirtualSizeBytes, info.ActualSizeBytes,
                new NewRevision(path, "Installed", info.ActualSizeBytes)),
        ]));
    }

    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#qube-independence")), Wait);
        return cut;
    }

    private static string StateOf(IRenderedComponent<QubeDetailPage> cut) => cut.Find("#qube-independence").GetAttribute("data-state")!;

    [Fact]
    public async Task On_the_page_a_copy_is_paused_and_resumed_from_its_buttons()
    {
        await AddTemplateOnSparseDataAsync("slow", 16 * GiB);
        var clone = await Jobs.EnqueueAsync(JobKind.Clone, "slow-copy", new CloneRequest(QubeClass.StandaloneVM, "slow", "red"), CancellationToken.None);
        Assert.Equal(JobState.Succeeded, (await Jobs.WaitAsync(clone.Id, CancellationToken.None)).State);
        var cut = RenderPage("slow-copy");
        cut.WaitForAssertion(() => Assert.Contains(StateOf(cut), new[] { "queued", "copying" }), Wait);
        Assert.StartsWith("Depends on slow revision 1", cut.Find("#independence-text").TextContent.Trim());

        await (await ClickFreshAsync(cut, () => cut.Find("#independence-pause")));
        cut.WaitForAssertion(() => Assert.Equal("paused", StateOf(cut)), Wait);
        Assert.True((await Services.GetRequiredService<RootDetach>().DependencyAsync("slow-copy"))!.Paused);

        await (await ClickFreshAsync(cut, () => cut.Find("#independence-resume")));
        cut.WaitForAssertion(() => Assert.Contains(StateOf(cut), new[] { "queued", "copying" }), Wait);
        Assert.False((await Services.GetRequiredService<RootDetach>().DependencyAsync("slow-copy"))!.Paused);
        // Not left copying 16 GiB while the test's folder goes.
        await Services.GetRequiredService<DetachCommands>().PauseAsync("slow-copy");
        cut.WaitForAssertion(() => Assert.Equal("paused", StateOf(cut)), Wait);
    }

    [Fact]
    public async Task The_dashboard_shows_what_a_copy_still_copying_will_take_of_the_pool_and_drops_it_once_independent()
    {
        await AddTemplateOnSparseDataAsync("slow", 1 * GiB);
        // Held back by the qube's lock until paused: it cannot finish first.
        using (await Services.GetRequiredService<RootLocks>().LockAsync("slow-copy", CancellationToken.None))
        {
            var clone = await Jobs.EnqueueAsync(JobKind.Clone, "slow-copy", new CloneRequest(QubeClass.StandaloneVM, "slow", "red"), CancellationToken.None);
            Assert.Equal(JobState.Succeeded, (await Jobs.WaitAsync(clone.Id, CancellationToken.None)).State);
            await Services.GetRequiredService<DetachCommands>().PauseAsync("slow-copy");
        }
        var stillToTake = (await Services.GetRequiredService<RootDetach>().PendingCopiesAsync()).Single().StillToTakeBytes;
        Assert.True(stillToTake > GiB / 2, $"a 1 GiB copy still to make takes {stillToTake} bytes");

        var cut = Render<DashboardPage>();

        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#pool-pending")), Wait);
        Assert.Equal(stillToTake.ToString(CultureInfo.InvariantCulture), cut.Find("#pool-pending").GetAttribute("data-bytes"));
        var copy = Assert.Single(cut.FindAll(".pool-pending-copy"));
        Assert.Equal("slow-copy", copy.GetAttribute("data-qube"));
        Assert.EndsWith("from slow revision 1", copy.TextContent.Trim());
        Assert.Contains("free of", cut.Find("#pool-free").TextContent);

        // Made independent (the store says so): the dashboard follows the change and the line goes.
        await Services.GetRequiredService<RootDetach>().DetachAsync("slow-copy");
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll("#pool-pending")), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task On_the_page_a_small_copy_is_seen_reaching_independence()
    {
        await AddTemplateOnSparseDataAsync("small", 1 * GiB);
        var clone = await Jobs.EnqueueAsync(JobKind.Clone, "small-copy", new CloneRequest(QubeClass.StandaloneVM, "small", "red"), CancellationToken.None);
        Assert.Equal(JobState.Succeeded, (await Jobs.WaitAsync(clone.Id, CancellationToken.None)).State);
        var cut = RenderPage("small-copy");

        cut.WaitForAssertion(() => Assert.Equal("independent", StateOf(cut)), TimeSpan.FromSeconds(60));
        Assert.Null(await Services.GetRequiredService<RootDetach>().DependencyAsync("small-copy"));
    }
}
