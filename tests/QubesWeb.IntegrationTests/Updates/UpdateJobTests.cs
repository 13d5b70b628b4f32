// Template updates end to end on the embedded demo: the simulated guest's package manager output streamed into the
// job's log, the root committed as a new revision on real files, its running qubes outdated; a cancelled or failed
// update leaves the template on its old revision; checks set Qubes' updates features.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Updates;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.Updates;

public sealed class UpdateJobTests
{
    private static async Task<RootStaleness> StalenessAsync(ConsoleHost host, string qube) =>
        QubeRow.From(await host.Get<InventoryService>().ListAsync(), host.Get<EstateMonitor>()).Single(r => r.Name == qube).Staleness;

    [Fact]
    public async Task An_update_streams_its_output_commits_a_new_revision_and_outdates_the_running_qubes()
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        var queued = await jobs.EnqueueAsync(JobKind.Update, "fedora-42", CancellationToken.None);
        // The log streams: package lines are there while the job still runs.
        await Eventually.UntilAsync(async () =>
        {
            var job = (await jobs.GetAsync(queued.Id))!;
            return job.Log.Any(l => l.Text.Contains("Upgrading") && l.Text.Contains("[simulated]")) || job.IsFinished;
        }, "package lines in the log");
        var during = (await jobs.GetAsync(queued.Id))!;
        Assert.False(during.IsFinished, "the log did not stream: the first package line came with the end of the job");

        var done = Succeeded(await FinishedAsync(host, queued.Id));

        Assert.Contains(done.Log, l => l.Level == JobLogLevel.Warning && l.Text.StartsWith("Demo mode: the package manager inside the qube is simulated"));
        Assert.Contains(done.Log, l => l.Text == "[simulated by the demo] /usr/bin/dnf -y upgrade --refresh");
        // A template goes online only through its UpdateVM's proxy (sys-net by default), which the demo says it cannot do.
        var sysNet = await host.Get<InventoryService>().GetAsync("sys-net");
        Assert.Contains(done.Log, l => l.Level == JobLogLevel.Warning
            && l.Text.StartsWith($"Demo mode: the update would reach its repositories only through sys-net's updates proxy at {sysNet.IpAddress}:8082;"));
        Assert.Contains(done.Log, l => l.Text == "fedora-42 is on revision 2 now (was 1).");
        Assert.Contains(done.Log, l => l.Text.StartsWith("Outdated until they restart: ") && l.Text.Contains("work"));
        var history = (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!;
        Assert.Equal(2, history.Current);
        Assert.StartsWith("Update (dnf -y upgrade --refresh)", history.Revisions[0].Reason);
        Assert.True(history.Revisions[0].SizeBytes >= 5L << 20);
        Assert.Equal(RunState.Halted, host.Get<EstateMonitor>().StateOf("fedora-42"));
        Assert.Equal(RootStaleness.Outdated, await StalenessAsync(host, "work"));
        var fedora = await host.Get<InventoryService>().GetAsync("fedora-42");
        Assert.Equal("False", fedora.Feature("updates-available"));
        Assert.NotNull(fedora.Feature("last-update"));
    }

    [Fact]
    public async Task A_cancelled_update_drops_its_changes_and_the_template_stays_on_its_revision()
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        var queued = await jobs.EnqueueAsync(JobKind.Update, "debian-13", CancellationToken.None);
        await Eventually.UntilAsync(async () => (await jobs.GetAsync(queued.Id))!.Log.Any(l => l.Text.Contains("Unpacking")), "the update to be under way");

        Assert.True(await jobs.CancelAsync(queued.Id));

        var done = await FinishedAsync(host, queued.Id);
        Assert.Equal(JobState.Cancelled, done.State);
        Assert.Contains(done.Log, l => l.Text == "debian-13 stays on revision 1.");
        var history = (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!;
        Assert.Equal(1, history.Current);
        Assert.Single(history.Revisions);
        Assert.False(history.HasDirtyOverlay);
        Assert.False(File.Exists(Path.Combine(host.DataDir, "pool", "debian-13", RootFiles.Dirty)));
        Assert.Equal(RunState.Halted, host.Get<EstateMonitor>().StateOf("debian-13"));
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "mail"));
    }

    [Fact]
    public async Task A_check_sets_updates_available_and_leaves_the_template_as_it_was()
    {
        await using var host = await ConsoleHost.StartAsync();

        var check = await RunAsync(host, JobKind.CheckUpdates, "fedora-42");

        Assert.True(check.State == JobState.Succeeded, check.Error);
        var fedora = await host.Get<InventoryService>().GetAsync("fedora-42");
        Assert.Equal("True", fedora.Feature("updates-available"));
        Assert.NotNull(fedora.Feature("last-updates-check"));
        Assert.Equal(RunState.Halted, host.Get<EstateMonitor>().StateOf("fedora-42"));
        Assert.Equal(1, (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!.Current);

        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Update, "fedora-42")).State);
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.CheckUpdates, "fedora-42")).State);
        Assert.Equal("False", (await host.Get<InventoryService>().GetAsync("fedora-42")).Feature("updates-available"));
    }

    [Fact]
    public async Task An_AppVM_is_not_updated_on_its_own_and_the_reason_is_given()
    {
        await using var host = await ConsoleHost.StartAsync();
        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Update, "work", CancellationToken.None));
        Assert.Equal("'work' is an AppVM: it gets its software from its template; update the template instead.", error.Message);
    }

    [Fact]
    public async Task A_qube_without_a_known_package_manager_is_refused_with_what_to_set()
    {
        await using var host = await ConsoleHost.StartAsync();
        await host.Get<InventoryService>().UpdateAsync("devbox", new QubeChanges(Features: new Dictionary<string, string?> { ["os-distribution"] = "plan9" }));
        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Update, "devbox", CancellationToken.None));
        Assert.Equal("No update command is known for devbox (os-distribution 'plan9'); set its feature qubesweb-update-command, e.g. '/usr/bin/dnf -y upgrade'.", error.Message);
    }
}
