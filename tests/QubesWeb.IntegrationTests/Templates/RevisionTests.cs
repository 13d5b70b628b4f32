// Template root revisions on real qcow2 files, driven through the console's jobs on the embedded demo (libvirt's
// test driver for lifecycle): commit at shutdown, outdated AppVMs, their restart onto the new data, retention and
// in-use protection, revert, switch template, faults and start-up recovery.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.Templates;

public sealed class RevisionTests
{
    private const long MiB = 1L << 20;

    private static string FileOf(ConsoleHost host, string qube, string file) => Path.Combine(host.PoolDir, qube, file);

    /// <summary>Start the template, write <paramref name="pattern"/> into its dirty overlay as a guest would, shut it down.</summary>
    private static async Task ChangeTemplateAsync(ConsoleHost host, string template, byte pattern, long offset)
    {
        await SucceedsAsync(host, JobKind.Start, template);
        await QemuImg.WritePatternAsync(FileOf(host, template, RootFiles.Dirty), pattern, offset, 4 * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, template);
    }

    private static async Task<RootStaleness> StalenessAsync(ConsoleHost host, string qube)
    {
        var rows = QubeRow.From(await host.Get<InventoryService>().ListAsync(), host.Get<EstateMonitor>());
        return rows.Single(r => r.Name == qube).Staleness;
    }

    private static async Task ReadsAsync(string image, byte pattern, long offset, long length = 4 * MiB) =>
        // qemu-io read -P fails unless every byte read is the pattern.
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath,
            ["-r", "-U", "-f", "qcow2", "-c", $"read -P 0x{pattern:x2} {offset} {length}", "--", image]);

    private static async Task<bool> ReadsPatternAsync(string image, byte pattern, long offset)
    {
        var r = await ProcessRunner.RunAsync(QemuImg.QemuIoPath,
            ["-r", "-U", "-f", "qcow2", "-c", $"read -P 0x{pattern:x2} {offset} {4 * MiB}", "--", image]);
        return r.ExitCode == 0 && !r.StandardOutput.Contains("Pattern verification failed", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_template_shutdown_commits_its_dirty_overlay_as_the_next_revision()
    {
        await using var host = await ConsoleHost.StartAsync();
        var rev1 = FileOf(host, "fedora-42", RootFiles.Revision(1));

        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        var dirty = FileOf(host, "fedora-42", RootFiles.Dirty);
        var chain = await QemuImg.ChainAsync(dirty);
        Assert.Equal([dirty, rev1], chain.Select(l => l.Path));
        await QemuImg.WritePatternAsync(dirty, 0xcd, 64 * MiB, 4 * MiB);
        Assert.Equal(1, (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!.Current);

        var shutdown = await RunAsync(host, JobKind.Shutdown, "fedora-42");

        Assert.True(shutdown.State == JobState.Succeeded, shutdown.Error);
        Assert.Contains(shutdown.Log, l => l.Text == "Committed the root of fedora-42 as revision 2 (was 1).");
        Assert.False(File.Exists(dirty));
        var rev2 = FileOf(host, "fedora-42", RootFiles.Revision(2));
        Assert.Equal([rev2, rev1], (await QemuImg.ChainAsync(rev2)).Select(l => l.Path));
        await ReadsAsync(rev2, 0xcd, 64 * MiB);
        await ReadsAsync(rev2, 0x51, 0, 16 * MiB); // the installed data, through the chain
        var history = (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!;
        Assert.Equal(2, history.Current);
        Assert.Equal([2, 1], history.Revisions.Select(r => r.Number));
        Assert.Equal("Committed at shutdown", history.Revisions[0].Reason);
        Assert.True(history.Revisions[0].SizeBytes >= 4 * MiB);
    }

    [Fact]
    public async Task Every_start_gets_a_fresh_empty_volatile_volume_whatever_the_last_run_wrote()
    {
        await using var host = await ConsoleHost.StartAsync();
        var volatilePath = FileOf(host, "research", "volatile.qcow2");
        var reference = Path.Combine(host.DataDir, "reference-volatile.qcow2");

        for (var run = 0; run < 2; run++)
        {
            await SucceedsAsync(host, JobKind.Start, "research");
            // The second start's volume is the kept image of the first, written again: it must still be a sound,
            // empty image of the qube's volatile size, not what the first run left in it.
            Assert.False(await ReadsPatternAsync(volatilePath, 0x7e, 0));
            var info = await QemuImg.InfoAsync(volatilePath);
            var volatileSize = (await host.Get<InventoryService>().GetAsync("research")).Volumes.Single(v => v.Kind == VolumeKind.Volatile).VirtualSizeBytes;
            Assert.Equal(volatileSize, info.VirtualSizeBytes);
            await QemuImg.CheckAsync(volatilePath);
            File.Delete(reference);
            await QemuImg.CreateAsync(reference, volatileSize);
            await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["compare", "-U", "-q", "--", reference, volatilePath]);
            await QemuImg.WritePatternAsync(volatilePath, 0x7e, 0, 4 * MiB);
            Assert.True(await ReadsPatternAsync(volatilePath, 0x7e, 0));
            await SucceedsAsync(host, JobKind.Kill, "research");
            Assert.False(File.Exists(volatilePath));
        }
    }

    [Fact]
    public async Task A_template_started_and_stopped_without_writes_makes_no_new_revision()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        var shutdown = await RunAsync(host, JobKind.Shutdown, "debian-13");

        Assert.Contains(shutdown.Log, l => l.Text == "Nothing was written to the root of debian-13; revision 1 stays current.");
        Assert.Equal(1, (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Current);
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "mail"));
    }

    [Fact]
    public async Task A_running_AppVM_is_to_be_outdated_then_outdated_and_its_restart_reads_the_new_revision()
    {
        await using var host = await ConsoleHost.StartAsync();
        var estate = host.Get<EstateMonitor>();
        Assert.Equal(RunState.Running, estate.StateOf("work"));
        var snap = FileOf(host, "work", RootFiles.Snapshot);
        Assert.Equal(FileOf(host, "fedora-42", RootFiles.Revision(1)), (await QemuImg.ChainAsync(snap))[1].Path);
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "work"));
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "research")); // halted: never outdated

        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        Assert.Equal(RootStaleness.ToBeOutdated, await StalenessAsync(host, "work"));
        await QemuImg.WritePatternAsync(FileOf(host, "fedora-42", RootFiles.Dirty), 0xcd, 64 * MiB, 4 * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, "fedora-42");

        Assert.Equal(RootStaleness.Outdated, await StalenessAsync(host, "work"));
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "research"));
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "mail")); // on debian-13
        Assert.False(await ReadsPatternAsync(snap, 0xcd, 64 * MiB));

        await SucceedsAsync(host, JobKind.Restart, "work");

        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "work"));
        Assert.Equal(FileOf(host, "fedora-42", RootFiles.Revision(2)), (await QemuImg.ChainAsync(snap))[1].Path);
        await ReadsAsync(snap, 0xcd, 64 * MiB);
    }

    [Fact]
    public async Task Outdated_state_survives_a_restart_of_the_console_and_stale_snapshots_are_removed()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            List<Qube> qubes;
            var first = await ConsoleHost.StartAsync(dataDir: dataDir);
            try
            {
                await SucceedsAsync(first, JobKind.Start, "research");
                await SucceedsAsync(first, JobKind.Start, "social");
                await ChangeTemplateAsync(first, "fedora-42", 0xcd, 64 * MiB);
                Assert.Equal(RootStaleness.Outdated, await StalenessAsync(first, "research"));
                qubes = await first.Get<InventoryService>().ListAsync();
            }
            finally
            {
                await first.StopAsync();
            }

            // The host as a real hypervisor keeps it while the console restarts: research still runs, social has
            // stopped meanwhile (so its snapshot is stale), the rest are halted.
            using var node = new TestNode(qubes.Where(q => q.Class != QubeClass.AdminVM)
                .Select(q => new TestNodeDomain(q.Name, q.Uuid, q.Name == "research" ? TestNode.Running : TestNode.Shutoff)).ToArray());
            await using var second = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false, dataDir: dataDir);

            Assert.Equal(RootStaleness.Outdated, await StalenessAsync(second, "research"));
            Assert.True(File.Exists(FileOf(second, "research", RootFiles.Snapshot)));
            Assert.False(File.Exists(FileOf(second, "social", RootFiles.Snapshot)));
            Assert.False(File.Exists(FileOf(second, "social", "volatile.qcow2")));
            var history = (await second.Get<RootRevisions>().HistoryAsync("fedora-42"))!;
            Assert.Equal(2, history.Current);
            Assert.Equal(["research"], history.Revisions.Single(r => r.Number == 1).UsedBy);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Old_revisions_beyond_revisions_to_keep_go_once_no_running_qube_uses_them()
    {
        await using var host = await ConsoleHost.StartAsync();
        var revisions = host.Get<RootRevisions>();
        await ChangeTemplateAsync(host, "fedora-42", 0xc2, 64 * MiB);
        await ChangeTemplateAsync(host, "fedora-42", 0xc3, 128 * MiB);

        // Revision 1 fell out of revisions_to_keep=1, but work, personal, sys-net and sys-firewall run on it.
        var history = (await revisions.HistoryAsync("fedora-42"))!;
        Assert.Equal([3, 2, 1], history.Revisions.Select(r => r.Number));
        Assert.False(history.Revisions.Single(r => r.Number == 1).Kept);
        Assert.Contains("work", history.Revisions.Single(r => r.Number == 1).UsedBy);
        Assert.True(File.Exists(FileOf(host, "fedora-42", RootFiles.Revision(1))));

        await SucceedsAsync(host, JobKind.RestartOutdated, "fedora-42", new RestartOutdatedRequest());

        history = (await revisions.HistoryAsync("fedora-42"))!;
        Assert.Equal([3, 2], history.Revisions.Select(r => r.Number));
        Assert.False(File.Exists(FileOf(host, "fedora-42", RootFiles.Revision(1))));
        // Revision 1 was merged into revision 2, which now stands alone and still reads as it did.
        var rev2 = FileOf(host, "fedora-42", RootFiles.Revision(2));
        Assert.Single(await QemuImg.ChainAsync(rev2));
        await ReadsAsync(rev2, 0x51, 0, 16 * MiB);
        await ReadsAsync(rev2, 0xc2, 64 * MiB);
        Assert.False(await ReadsPatternAsync(rev2, 0xc3, 128 * MiB));
        var rev3 = FileOf(host, "fedora-42", RootFiles.Revision(3));
        await ReadsAsync(rev3, 0xc3, 128 * MiB);
        await ReadsAsync(rev3, 0xc2, 64 * MiB);
        await ReadsAsync(FileOf(host, "work", RootFiles.Snapshot), 0xc3, 128 * MiB);

        // revisions_to_keep=0: only the current revision is kept, its layers merged into one file.
        await host.Get<RootRetention>().SetRevisionsToKeepAsync("fedora-42", 0);
        Assert.Equal([3], (await revisions.HistoryAsync("fedora-42"))!.Revisions.Select(r => r.Number));
        Assert.Single(await QemuImg.ChainAsync(rev3));
        await ReadsAsync(rev3, 0x51, 0, 16 * MiB);
        await ReadsAsync(rev3, 0xc2, 64 * MiB);
        await ReadsAsync(rev3, 0xc3, 128 * MiB);
        Assert.Empty(Directory.GetFiles(Path.Combine(host.PoolDir, "fedora-42"), "root.*.qcow2").Except([rev3]));
    }

    [Fact]
    public async Task Revert_makes_an_older_revision_current_keeps_the_newer_one_and_is_refused_while_the_template_runs()
    {
        await using var host = await ConsoleHost.StartAsync();
        await ChangeTemplateAsync(host, "debian-13", 0xd2, 64 * MiB);
        await SucceedsAsync(host, JobKind.Restart, "mail");
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "mail"));

        var revert = await RunAsync(host, JobKind.Revert, "debian-13", new RevertRootRequest(1));

        Assert.True(revert.State == JobState.Succeeded, revert.Error);
        Assert.Contains(revert.Log, l => l.Text == "Outdated until they restart: mail.");
        var history = (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!;
        Assert.Equal(1, history.Current);
        Assert.Equal([2, 1], history.Revisions.Select(r => r.Number));
        Assert.Equal(RootStaleness.Outdated, await StalenessAsync(host, "mail"));
        await SucceedsAsync(host, JobKind.Restart, "mail");
        Assert.False(await ReadsPatternAsync(FileOf(host, "mail", RootFiles.Snapshot), 0xd2, 64 * MiB));

        // The next commit goes on revision 1; revision 2, reverted from, is still there to go back to.
        await ChangeTemplateAsync(host, "debian-13", 0xd3, 128 * MiB);
        history = (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!;
        Assert.Equal(3, history.Current);
        Assert.Equal(1, history.Revisions.Single(r => r.Number == 3).BackingNumber);
        Assert.Contains(history.Revisions, r => r.Number == 2);

        await SucceedsAsync(host, JobKind.Start, "debian-13");
        var refused = await Assert.ThrowsAsync<QubeRuleException>(() =>
            host.Get<JobEngine>().EnqueueAsync(JobKind.Revert, "debian-13", new RevertRootRequest(2), CancellationToken.None));
        Assert.Equal("'debian-13' is running; shut it down before reverting its root.", refused.Message);
    }

    [Fact]
    public async Task A_template_stopped_behind_the_consoles_back_is_committed_by_a_job()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(FileOf(host, "debian-13", RootFiles.Dirty), 0xe1, 0, 4 * MiB);

        host.Get<IHypervisor>().Kill("debian-13");

        var jobs = host.Get<JobEngine>();
        Job? commit = null;
        await Eventually.UntilAsync(host.Get<EstateMonitor>(), async () =>
        {
            commit = (await jobs.QueryAsync(new JobQuery { Target = "debian-13" })).FirstOrDefault(j => JobKind.Commit.Is(j));
            return commit is { State: JobState.Succeeded or JobState.Failed };
        }, "a commit job for debian-13 to finish");
        Assert.Equal(JobState.Succeeded, commit!.State);
        Assert.Equal(2, (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Current);
        Assert.Equal(RootStaleness.Outdated, await StalenessAsync(host, "mail"));
    }

    [Fact]
    public async Task A_commit_qemu_img_refuses_leaves_the_template_on_its_last_revision_and_it_starts_again()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        var dirty = FileOf(host, "debian-13", RootFiles.Dirty);
        await QemuImg.WritePatternAsync(dirty, 0xe2, 0, 4 * MiB);
        // A broken image: its qcow2 header is overwritten, so qemu-img check fails.
        await using (var f = new FileStream(dirty, FileMode.Open, FileAccess.Write))
            f.Write(new byte[64]);

        var shutdown = await RunAsync(host, JobKind.Shutdown, "debian-13");

        Assert.Equal(JobState.Failed, shutdown.State);
        Assert.Contains("It stays on revision 1", shutdown.Error);
        Assert.True(File.Exists(FileOf(host, "debian-13", RootFiles.Rejected)));
        Assert.False(File.Exists(dirty));
        var history = (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!;
        Assert.Equal(1, history.Current);
        Assert.Equal([1], history.Revisions.Select(r => r.Number));
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        Assert.Equal(FileOf(host, "debian-13", RootFiles.Revision(1)), (await QemuImg.ChainAsync(dirty))[1].Path);
    }

    [Fact]
    public async Task Restart_outdated_restarts_service_qubes_first_and_leaves_restart_after_update_false_alone()
    {
        await using var host = await ConsoleHost.StartAsync();
        await host.Get<InventoryService>().UpdateAsync("personal",
            new QubeChanges(Features: new Dictionary<string, string?> { ["restart-after-update"] = "False" }));
        await ChangeTemplateAsync(host, "fedora-42", 0xc2, 64 * MiB);

        var job = await RunAsync(host, JobKind.RestartOutdated, QubeRules.AdminVmName, new RestartOutdatedRequest());

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Contains(job.Log, l => l.Text == "Left alone (restart-after-update is false): personal.");
        Assert.Contains(job.Log, l => l.Text == "Restarting 3 outdated qube(s): sys-net, sys-firewall, work.");
        var restarts = (await host.Get<JobEngine>().QueryAsync(new JobQuery()))
            .Where(j => JobKind.Restart.Is(j)).OrderBy(j => j.Id).Select(j => j.Target).ToList();
        Assert.Equal(["sys-net", "sys-firewall", "work"], restarts);
        Assert.Equal(RootStaleness.Current, await StalenessAsync(host, "work"));
        Assert.Equal(RootStaleness.Outdated, await StalenessAsync(host, "personal"));
    }

    [Fact]
    public async Task Restart_outdated_can_shut_the_running_template_down_first()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(FileOf(host, "debian-13", RootFiles.Dirty), 0xe3, 0, 4 * MiB);
        Assert.Equal(["debian-13"], await host.Get<RestartOutdatedJob>().RunningTemplatesAsync("debian-13", CancellationToken.None));

        var job = await RunAsync(host, JobKind.RestartOutdated, "debian-13", new RestartOutdatedRequest(ShutDownTemplatesFirst: true));

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Equal(RunState.Halted, host.Get<EstateMonitor>().StateOf("debian-13"));
        Assert.Equal(2, (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Current);
        await ReadsAsync(FileOf(host, "mail", RootFiles.Snapshot), 0xe3, 0);
    }

    [Fact]
    public async Task Switch_template_changes_halted_AppVMs_and_refuses_running_ones_with_the_reason()
    {
        await using var host = await ConsoleHost.StartAsync();

        var results = await host.Get<QubeCommands>().SwitchTemplateAsync(["research", "work", "social"], "debian-13");

        Assert.Equal([("research", true), ("work", false), ("social", true)], results.Select(r => (r.Qube, r.Done)));
        Assert.Equal("'work' is running; its template can change only while it is halted. Shut it down first.", results[1].Refusal);
        var qubes = await host.Get<InventoryService>().ListAsync();
        Assert.Equal("debian-13", qubes.Single(q => q.Name == "research").Template!.Name);
        Assert.Equal("fedora-42", qubes.Single(q => q.Name == "work").Template!.Name);
        Assert.Equal("debian-13", host.Get<IHypervisor>().GetMetadata("research")?.Template);
        await SucceedsAsync(host, JobKind.Start, "research");
        Assert.Equal(FileOf(host, "debian-13", RootFiles.Revision(1)),
            (await QemuImg.ChainAsync(FileOf(host, "research", RootFiles.Snapshot)))[1].Path);
    }

    [Fact]
    public async Task Revisions_to_keep_outside_0_to_10_is_refused_and_changes_nothing()
    {
        await using var host = await ConsoleHost.StartAsync();
        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<RootRetention>().SetRevisionsToKeepAsync("fedora-42", 11));
        Assert.Equal("revisions_to_keep is between 0 and 10; 11 is not.", error.Message);
        Assert.Equal(1, (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!.RevisionsToKeep);
    }
}
