// Standalones and clones made by the real console on its embedded demo, on real qcow2 files: an independent root
// equal to the source's revision, the domain's class, refusals with nothing written, failure and cancel leaving
// nothing behind, a disk that fills up mid-copy, two tabs racing for one name, a source that changes meanwhile.
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
        Assert.Equal("Copied from fedora-42 revision 1", history.Revisions.Single().Reason);
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

    [Fact]
    public async Task Cancelled_during_the_copy_it_leaves_no_file_row_or_domain()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 1024);
        var jobs = host.Get<JobEngine>();
        var job = await jobs.EnqueueAsync(JobKind.Clone, "cancelled", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red"), CancellationToken.None);
        await Eventually.UntilAsync(async () => ((await jobs.GetAsync(job.Id))!.Step ?? "").StartsWith("Copying debian-13 revision 2:", StringComparison.Ordinal),
            "the copy to report progress");

        Assert.True(await jobs.CancelAsync(job.Id));

        Assert.Equal(JobState.Cancelled, (await FinishedAsync(host, job.Id)).State);
        await AssertNothingLeftAsync(host, "cancelled");
    }

    [Fact]
    public async Task A_disk_that_fills_up_during_the_copy_fails_the_job_cleanly()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 64);
        // The new qube's folder is a small filesystem of its own: the pool as a whole has room, this one fills up.
        var dir = Path.Combine(host.PoolDir, "too-big");
        Directory.CreateDirectory(dir);
        await ProcessRunner.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", "size=16M", "tmpfs", dir]);
        try
        {
            var job = await RunAsync(host, JobKind.Clone, "too-big", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red"));

            Assert.Equal(JobState.Failed, job.State);
            Assert.Contains("No space left on device", job.Error);
            await AssertNothingLeftAsync(host, "too-big", folderWasThere: true);
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
    public async Task A_source_template_that_starts_and_commits_during_the_copy_leaves_the_copy_consistent()
    {
        await using var host = await ConsoleHost.StartAsync();
        await GrowAsync(host, "debian-13", 1024);
        await host.Get<RootRetention>().SetRevisionsToKeepAsync("debian-13", 0);
        var copied = FileOf(host, "debian-13", RootFiles.Revision(2));
        var reference = Path.Combine(host.DataDir, "reference.qcow2");
        await QemuImg.ConvertAsync(copied, reference);
        var jobs = host.Get<JobEngine>();
        var job = await jobs.EnqueueAsync(JobKind.Clone, "snapshot-copy", new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red"), CancellationToken.None);
        await Eventually.UntilAsync(async () => ((await jobs.GetAsync(job.Id))!.Step ?? "").StartsWith("Copying", StringComparison.Ordinal), "the copy to start");

        // Meanwhile the template runs, changes and commits revision 3; with revisions_to_keep=0, revision 2 would go
        // at once were the copy not reading it.
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(FileOf(host, "debian-13", RootFiles.Dirty), 0x99, 0, 8 * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, "debian-13");

        Succeeded(await FinishedAsync(host, job.Id));
        Assert.True(await SameDataAsync(reference, FileOf(host, "snapshot-copy", RootFiles.Revision(1))));
        // Once the copy let go, the revision it read went (revision 1 stays: mail still runs on it).
        await host.Get<RootRetention>().ApplyRetentionAsync("debian-13");
        Assert.Equal([3, 1], (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Revisions.Select(r => r.Number));
    }
}
