// Standalones and clones made by the real console on its embedded demo, on real qcow2 files: a root made at once as
// an overlay on the source's revision, pinned, then made independent by the detach job, reading the same data at
// every point; the domain's class, refusals with nothing written, a pause and a resume, a disk that fills up
// mid-detach, two tabs racing for one name, a source that changes, reverts and compacts meanwhile.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.QubeTests;

public sealed class CloneQubeJobTests
{
    private const long MiB = 1L << 20, GiB = 1L << 30;

    private static string FileOf(ConsoleHost host, string qube, string file) => Path.Combine(host.PoolDir, qube, file);

    private static async Task<bool> SameDataAsync(string a, string b) =>
        (await ProcessRunner.RunAsync(QemuImg.QemuImgPath, ["compare", "-U", "-q", "--", a, b])).ExitCode == 0;

    /// <summary>Nothing of <paramref name="name"/> anywhere: no row, no domain, no file (its folder at most, if it was there before).</summary>
    private static async Task AssertNothingLeftAsync(ConsoleHost host, string name, bool folderWasThere = false)
    {
        Assert.Null(await host.Get<InventoryService>().FindAsync(name));
        Assert.Null(host.Get<IHypervisor>().GetDomain(name));
        var dir = Path.Combine(host.PoolDir, name);
        if (folderWasThere) Assert.Empty(Directory.GetFileSystemEntries(dir));
        else Assert.False(Directory.Exists(dir), $"{dir} is left behind");
    }

    /// <summary>Makes debian-13's current revision hold <paramref name="mib"/> MiB more, so a copy takes a while.</summary>
    private static async Task GrowAsync(ConsoleHost host, string template, long mib)
    {
        await SucceedsAsync(host, JobKind.Start, template);
        await QemuImg.WritePatternAsync(FileOf(host, template, RootFiles.Dirty), 0x77, 256 * MiB, mib * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, template);
    }

    [Fact]
    public async Task A_standalone_from_a_template_has_an_independent_root_equal_to_the_templates_revision()
    {
        await using var host = await ConsoleHost.StartAsync();

        var job = await RunAsync(host, JobKind.Clone, "dev-env", new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "orange", "sys-firewall",
            MemoryMiB: 2000, RootSizeBytes: 12 * GiB, Purpose: StandalonePurpose.Development));

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Equal(100, job.Progress);
        var root = FileOf(host, "dev-env", RootFiles.Revision(1));
        // Made at once: an overlay on the template's revision, pinned in the inventory.
        var overlay = await QemuImg.ChainAsync(root);
        Assert.Equal(FileOf(host, "fedora-42", RootFiles.Revision(1)), overlay[1].Path);
        Assert.Equal(new RootDependency("dev-env", "fedora-42", 1, 1, false), await host.Get<RootDetach>().DependencyAsync("dev-env"));
        Assert.Contains("dev-env", (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!.Revisions.Single(r => r.Number == 1).UsedBy);

        Succeeded(await QueuedByAnotherAsync(host, JobKind.Detach, "dev-env"));
        Assert.Null(await host.Get<RootDetach>().DependencyAsync("dev-env"));
        var chain = await QemuImg.ChainAsync(root);
        Assert.Single(chain); // no backing file
        Assert.Equal(12 * GiB, chain[0].VirtualSizeBytes);
        // Equal to the template's revision over its size; the grown part reads as zeros.
        Assert.True(await SameDataAsync(FileOf(host, "fedora-42", RootFiles.Revision(1)), root));
        var qube = await host.Get<InventoryService>().GetAsync("dev-env");
        Assert.Equal(QubeClass.StandaloneVM, qube.Class);
        Assert.Null(qube.Template);
        Assert.Equal("sys-firewall", qube.NetVm?.Name);
        Assert.Equal(2000, qube.MemoryMiB);
        Assert.Equal("fedora", qube.Feature("os-distribution"));
        Assert.Equal(new QubeMetadata("StandaloneVM", "orange", null), host.Get<IHypervisor>().GetMetadata("dev-env"));
        var history = (await host.Get<RootRevisions>().HistoryAsync("dev-env"))!;
        Assert.Equal("Made from fedora-42 revision 1", history.Revisions.Single().Reason);
        // Its private volume is fresh (Qubes' default), not the template's.
        Assert.Single(await QemuImg.ChainAsync(FileOf(host, "dev-env", "private.qcow2")));
        Assert.False(await SameDataAsync(FileOf(host, "fedora-42", "private.qcow2"), FileOf(host, "dev-env", "private.qcow2")));

        await SucceedsAsync(host, JobKind.Start, "dev-env");
        Assert.Equal(root, (await QemuImg.ChainAsync(FileOf(host, "dev-env", RootFiles.Dirty)))[1].Path);
    }

    [Fact]
    public async Task A_template_cloned_into_a_new_template_keeps_its_features_and_can_carry_AppVMs()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 8);

        var job = await RunAsync(host, JobKind.Clone, "debian-13-work", new CloneRequest(QubeClass.TemplateVM, "debian-13", "black", CopyPrivate: true));

        Assert.True(job.State == JobState.Succeeded, job.Error);
        var clone = await host.Get<InventoryService>().GetAsync("debian-13-work");
        Assert.Equal(QubeClass.TemplateVM, clone.Class);
        Assert.Equal("debian", clone.Feature("os-distribution"));
        Assert.True(await SameDataAsync(FileOf(host, "debian-13", RootFiles.Revision(2)), FileOf(host, "debian-13-work", RootFiles.Revision(1))));
        Assert.True(await SameDataAsync(FileOf(host, "debian-13", "private.qcow2"), FileOf(host, "debian-13-work", "private.qcow2")));
        var results = await host.Get<QubeCommands>().SwitchTemplateAsync(["vault"], "debian-13-work");
        Assert.True(results.Single().Done, results.Single().Refusal);
        await SucceedsAsync(host, JobKind.Start, "vault");
        Succeeded(await QueuedByAnotherAsync(host, JobKind.Detach, "debian-13-work"));
        Assert.True(await SameDataAsync(FileOf(host, "debian-13", RootFiles.Revision(2)), FileOf(host, "debian-13-work", RootFiles.Revision(1))));
    }

    [Fact]
    public async Task An_empty_standalone_has_a_blank_root_of_the_chosen_size()
    {
        await using var host = await ConsoleHost.StartAsync();
        var job = await RunAsync(host, JobKind.Clone, "installer", new CloneRequest(QubeClass.StandaloneVM, null, "red", RootSizeBytes: 20 * GiB));
        Assert.True(job.State == JobState.Succeeded, job.Error);
        var info = await QemuImg.InfoAsync(FileOf(host, "installer", RootFiles.Revision(1)));
        Assert.Equal(20 * GiB, info.VirtualSizeBytes);
        Assert.Null(info.BackingFile);
        Assert.False(await QemuImg.HasOwnDataAsync(FileOf(host, "installer", RootFiles.Revision(1))));
    }

    [Theory]
    [InlineData("work", "fedora-42", QubeClass.StandaloneVM, "A qube named 'work' already exists; choose another name.")]
    [InlineData("new-one", "work", QubeClass.StandaloneVM, "'work' is an AppVM: only a template's or a standalone's root can be copied.")]
    [InlineData("new-one", "devbox", QubeClass.TemplateVM, "A standalone is cloned into a standalone, not a template.")]
    [InlineData("new-one", null, QubeClass.TemplateVM, "A new template is a clone of a template: choose the template to clone.")]
    [InlineData("new-one", "nope", QubeClass.StandaloneVM, "There is no qube named 'nope' to copy.")]
    [InlineData("../etc", "fedora-42", QubeClass.StandaloneVM, null)]
    public async Task Bad_requests_are_refused_before_anything_is_written(string name, string? source, QubeClass cls, string? message)
    {
        await using var host = await ConsoleHost.StartAsync();
        var before = Directory.GetFileSystemEntries(host.PoolDir, "*", SearchOption.AllDirectories).Order().ToList();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Clone, name,
            new CloneRequest(cls, source, "red"), CancellationToken.None));

        if (message is not null) Assert.Equal(message, error.Message);
        Assert.Equal(before, Directory.GetFileSystemEntries(host.PoolDir, "*", SearchOption.AllDirectories).Order().ToList());
        Assert.Empty(await host.Get<JobEngine>().QueryAsync(new JobQuery { Target = name }));
    }

    [Fact]
    public async Task A_root_smaller_than_the_sources_is_refused_with_the_size_to_use()
    {
        await using var host = await ConsoleHost.StartAsync();
        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Clone, "small",
            new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "red", RootSizeBytes: 5 * GiB), CancellationToken.None));
        Assert.Equal("The root cannot be smaller than 10 GiB, the size of fedora-42's root.", error.Message);
    }

    /// <summary>A reference copy of <paramref name="qube"/>'s revision <paramref name="number"/>, flattened, to compare with later.</summary>
    private static async Task<string> ReferenceAsync(ConsoleHost host, string qube, int number, string name)
    {
        var reference = Path.Combine(host.DataDir, name + ".qcow2");
        await QemuImg.ConvertAsync(FileOf(host, qube, RootFiles.Revision(number)), reference);
        return reference;
    }

    /// <summary>
    /// Clones debian-13 (grown by 1 GiB, so a resumed detach takes a while) into <paramref name="name"/> and pauses its
    /// detach, held back meanwhile by the qube's lock so that it cannot finish first.
    /// </summary>
    private static async Task<string> ClonePausedAsync(ConsoleHost host, string name)
    {
        await GrowAsync(host, "debian-13", 1024);
        var reference = await ReferenceAsync(host, "debian-13", 2, "reference");
        using (await host.Get<RootLocks>().LockAsync(name, CancellationToken.None))
        {
            Succeeded(await RunAsync(host, JobKind.Clone, name, new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));
            await host.Get<DetachCommands>().PauseAsync(name);
        }
        Assert.Equal(JobState.Cancelled, (await QueuedByAnotherAsync(host, JobKind.Detach, name)).State);
        Assert.Equal(new RootDependency(name, "debian-13", 2, 1, true), await host.Get<RootDetach>().DependencyAsync(name));
        return reference;
    }

    [Fact]
    public async Task A_pause_right_after_a_resume_always_stops_the_detach_whether_it_was_queued_or_just_taken()
    {
        await using var host = await ConsoleHost.StartAsync();
        var commands = host.Get<DetachCommands>();
        // The detach cannot finish while the test holds the qube's lock: a pause the engine lost (the job taken by a
        // worker between the pause's two looks) would leave it running, and the pause waiting on it, for good.
        using (await host.Get<RootLocks>().LockAsync("racing", CancellationToken.None))
        {
            Succeeded(await RunAsync(host, JobKind.Clone, "racing", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));
            for (var i = 0; i < 25; i++)
            {
                var job = await commands.ResumeAsync("racing");
                await commands.PauseAsync("racing").WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(JobState.Cancelled, (await host.Get<JobEngine>().GetAsync(job.Id))!.State);
            }
        }
        Assert.Equal(new RootDependency("racing", "debian-13", 1, 1, true), await host.Get<RootDetach>().DependencyAsync("racing"));
    }

    [Fact]
    public async Task Paused_during_the_detach_it_reads_its_source_until_resumed_then_is_independent()
    {
        await using var host = await ConsoleHost.StartAsync();
        var reference = await ClonePausedAsync(host, "paused");
        var root = FileOf(host, "paused", RootFiles.Revision(1));
        Assert.False(File.Exists(RootDetach.PartOf(root)), "the unfinished copy is left behind");
        Assert.True(await SameDataAsync(reference, root));
        // It starts and stops meanwhile, reading through its source.
        await SucceedsAsync(host, JobKind.Start, "paused");
        await SucceedsAsync(host, JobKind.Shutdown, "paused");

        var resumed = await host.Get<DetachCommands>().ResumeAsync("paused");

        Succeeded(await FinishedAsync(host, resumed.Id));
        Assert.Null(await host.Get<RootDetach>().DependencyAsync("paused"));
        Assert.Null((await QemuImg.InfoAsync(root)).BackingFile);
        Assert.True(await SameDataAsync(reference, root));
    }

    [Fact]
    public async Task Retention_revert_and_compaction_of_the_source_keep_the_pinned_revision_until_the_detach_is_done()
    {
        await using var host = await ConsoleHost.StartAsync();
        var reference = await ClonePausedAsync(host, "pinned");
        await host.Get<RootRetention>().SetRevisionsToKeepAsync("debian-13", 0);
        // The template changes and commits revision 3: with revisions_to_keep=0, revision 2 would go at once.
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(FileOf(host, "debian-13", RootFiles.Dirty), 0x99, 0, 8 * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, "debian-13");
        // Reverted to revision 1 and compacted with its old revisions dropped: revision 2 still stays.
        await SucceedsAsync(host, JobKind.Revert, "debian-13", new RevertRootRequest(1));
        var compaction = await SucceedsAsync(host, JobKind.Compact, "debian-13", new CompactRequest(DropOldRevisions: true));
        Assert.Contains(compaction.Log, l => l.Text == "Old revision 2 stays while pinned is made independent of it; it is deleted once that copy is done, and this log says what that won.");
        var history = (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!;
        Assert.Contains("pinned", history.Revisions.Single(r => r.Number == 2).UsedBy);
        Assert.True(await SameDataAsync(reference, FileOf(host, "pinned", RootFiles.Revision(1))));
        // The copy itself is not compacted while it reads through its source, and the source is not removed.
        var compact = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Compact, "pinned", new CompactRequest(), CancellationToken.None));
        Assert.Contains("wait until it is independent", compact.Message);

        Succeeded(await FinishedAsync(host, (await host.Get<DetachCommands>().ResumeAsync("pinned")).Id));

        Assert.True(await SameDataAsync(reference, FileOf(host, "pinned", RootFiles.Revision(1))));
        // Once independent, nothing holds revision 2: the detach's end let it go.
        Assert.DoesNotContain(2, (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Revisions.Select(r => r.Number));
        Succeeded(await RunAsync(host, JobKind.Compact, "pinned", new CompactRequest()));
    }

    [Fact]
    public async Task A_standalone_source_is_not_removed_while_a_copy_reads_it()
    {
        await using var host = await ConsoleHost.StartAsync();
        // devbox's root is small: its detach is held at its first step (the copy's storage lock) until paused.
        using (await host.Get<RootLocks>().LockAsync("devbox-copy", CancellationToken.None))
        {
            Succeeded(await RunAsync(host, JobKind.Clone, "devbox-copy", new CloneRequest(QubeClass.StandaloneVM, "devbox", "red")));
            await host.Get<DetachCommands>().PauseAsync("devbox-copy");
        }

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Remove, "devbox", CancellationToken.None));

        Assert.Equal("'devbox' still holds data of 1 qube(s) made from it: devbox-copy. Wait until they are independent (their detach finished), or remove them first.", error.Message);
        Succeeded(await FinishedAsync(host, (await host.Get<DetachCommands>().ResumeAsync("devbox-copy")).Id));
        Succeeded(await RunAsync(host, JobKind.Remove, "devbox"));
        await SucceedsAsync(host, JobKind.Start, "devbox-copy");
    }

    [Fact]
    public async Task A_copy_removed_while_it_detaches_stops_its_copy_and_leaves_nothing()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 1024);
        // Held at its first step until the removal has stopped it, so the removal meets a running copy on any machine.
        var hold = await host.Get<RootLocks>().LockAsync("gone-soon", CancellationToken.None);
        Job removal;
        try
        {
            Succeeded(await RunAsync(host, JobKind.Clone, "gone-soon", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));
            removal = await host.Get<JobEngine>().EnqueueAsync(JobKind.Remove, "gone-soon", CancellationToken.None);
            await Eventually.UntilAsync(async () => (await host.Get<DetachCommands>().ActiveAsync("gone-soon")) is null, "the removal to stop the copy");
        }
        finally
        {
            hold.Dispose();
        }

        Succeeded(await FinishedAsync(host, removal.Id));
        Assert.Equal(JobState.Cancelled, (await QueuedByAnotherAsync(host, JobKind.Detach, "gone-soon")).State);
        await AssertNothingLeftAsync(host, "gone-soon");
        // Its pin went with its row: debian-13's revision 2 is no longer read by it.
        Assert.DoesNotContain("gone-soon", (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Revisions.SelectMany(r => r.UsedBy));
    }

    [Fact]
    public async Task Writes_made_while_the_detach_copies_are_kept_and_the_rest_reads_as_the_source()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 1024);
        var expected = await ReferenceAsync(host, "debian-13", 2, "expected");
        var jobs = host.Get<JobEngine>();
        Succeeded(await RunAsync(host, JobKind.Clone, "busy", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));

        // Started at once, and written to (qemu-io on its overlay, as the guest would) while the copy runs.
        await SucceedsAsync(host, JobKind.Start, "busy");
        await QemuImg.WritePatternAsync(FileOf(host, "busy", RootFiles.Dirty), 0x5a, 300 * MiB, 16 * MiB);
        await QemuImg.WritePatternAsync(expected, 0x5a, 300 * MiB, 16 * MiB);
        Succeeded(await QueuedByAnotherAsync(host, JobKind.Detach, "busy"));
        await SucceedsAsync(host, JobKind.Shutdown, "busy");

        var history = (await host.Get<RootRevisions>().HistoryAsync("busy"))!;
        Assert.Equal(2, history.Current);
        Assert.True(await SameDataAsync(expected, FileOf(host, "busy", RootFiles.Revision(2))));
        // Its bottom revision reads on its own, as the template's revision did.
        Assert.Null((await QemuImg.InfoAsync(FileOf(host, "busy", RootFiles.Revision(1)))).BackingFile);
        Assert.True(await SameDataAsync(FileOf(host, "debian-13", RootFiles.Revision(2)), FileOf(host, "busy", RootFiles.Revision(1))));
        Assert.Empty(await jobs.QueryAsync(new JobQuery { Target = "busy", States = [JobState.Failed] }));
    }

    [Fact]
    public async Task A_detach_cut_off_by_a_restart_of_the_console_is_queued_again_and_finishes()
    {
        var dataDir = ConsoleHost.NewDataDir();
        string reference;
        long cutOff;
        // Stopped, not disposed: disposing deletes the data folder the second console starts on.
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        try
        {
            await GrowAsync(first, "debian-13", 1024);
            reference = await ReferenceAsync(first, "debian-13", 2, "reference");
            Succeeded(await RunAsync(first, JobKind.Clone, "restarted", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));
            cutOff = (await first.Get<DetachCommands>().ActiveAsync("restarted"))?.Id
                ?? throw new InvalidOperationException("The detach of a 1 GiB root ended before the console could be stopped.");
            await first.StopAsync();
        }
        catch
        {
            await first.DisposeAsync();
            throw;
        }
        await using var host = await ConsoleHost.StartAsync(dataDir: dataDir);
        var root = FileOf(host, "restarted", RootFiles.Revision(1));
        // A stop cancels the copy (it would hold the stop for as long as the copy takes); nothing was lost.
        Assert.Equal(JobState.Cancelled, (await host.Get<JobEngine>().GetAsync(cutOff))!.State);
        await Eventually.UntilAsync(async () => await host.Get<RootDetach>().DependencyAsync("restarted") is null, "the detach to finish after the restart");
        Assert.Null((await QemuImg.InfoAsync(root)).BackingFile);
        Assert.True(await SameDataAsync(reference, root));
    }

    [Fact]
    public async Task A_disk_that_fills_up_during_the_detach_fails_it_cleanly_and_the_qube_still_reads_its_source()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 64);
        // The new qube's folder is a small filesystem of its own: the pool as a whole has room, this one fills up.
        var dir = Path.Combine(host.PoolDir, "too-big");
        Directory.CreateDirectory(dir);
        await ProcessRunner.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", "size=16M", "tmpfs", dir]);
        try
        {
            Succeeded(await RunAsync(host, JobKind.Clone, "too-big", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));

            var detach = await QueuedByAnotherAsync(host, JobKind.Detach, "too-big");

            Assert.Equal(JobState.Failed, detach.State);
            Assert.Contains("No space left on device", detach.Error);
            var root = FileOf(host, "too-big", RootFiles.Revision(1));
            Assert.False(File.Exists(RootDetach.PartOf(root)), "the unfinished copy is left behind");
            Assert.Equal("debian-13", (await host.Get<RootDetach>().DependencyAsync("too-big"))?.Source);
            Assert.True(await SameDataAsync(FileOf(host, "debian-13", RootFiles.Revision(2)), root));
            await SucceedsAsync(host, JobKind.Start, "too-big");
            await SucceedsAsync(host, JobKind.Shutdown, "too-big");
        }
        finally
        {
            await ProcessRunner.RunCheckedAsync("umount", [dir]);
        }
    }

    [Fact]
    public async Task The_same_name_from_two_tabs_at_once_is_made_once_and_the_other_is_told_why()
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        var request = new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "red");

        var attempts = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            try { return (Job: await jobs.EnqueueAsync(JobKind.Clone, "twin", request, CancellationToken.None), Error: (string?)null); }
            catch (Exception e) when (e is JobConflictException or QubeRuleException) { return (Job: (Job?)null, Error: e.Message); }
        })));

        var won = Assert.Single(attempts, a => a.Job is not null);
        var lost = Assert.Single(attempts, a => a.Job is null);
        Assert.Matches("'twin' is busy: job #\\d+ \\(Create twin with its own root\\) holds its lock|A qube named 'twin' already exists", lost.Error);
        Succeeded(await FinishedAsync(host, won.Job!.Id));
        Assert.Single(await host.Get<InventoryService>().ListAsync(), q => q.Name == "twin");
    }

    [Fact]
    public async Task A_source_template_that_starts_and_commits_during_the_detach_leaves_the_copy_consistent()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 1024);
        await host.Get<RootRetention>().SetRevisionsToKeepAsync("debian-13", 0);
        var reference = await ReferenceAsync(host, "debian-13", 2, "reference");
        Succeeded(await RunAsync(host, JobKind.Clone, "snapshot-copy", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red")));

        // Meanwhile the template runs, changes and commits revision 3; with revisions_to_keep=0, revision 2 would go
        // at once were the copy not pinning it.
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(FileOf(host, "debian-13", RootFiles.Dirty), 0x99, 0, 8 * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, "debian-13");

        Succeeded(await QueuedByAnotherAsync(host, JobKind.Detach, "snapshot-copy"));
        Assert.True(await SameDataAsync(reference, FileOf(host, "snapshot-copy", RootFiles.Revision(1))));
        // Once the copy let go, the revision it read went (revision 1 stays: mail still runs on it).
        Assert.Equal([3, 1], (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Revisions.Select(r => r.Number));
    }
}
