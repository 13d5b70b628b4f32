// The create job run by the real console on its embedded demo: what a created qube is made of, every refusal before
// queueing (with nothing written), a failure half-way (nothing left behind) and recovery after a crash.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.QubeTests;

public sealed class CreateQubeJobTests
{
    private static CreateQubeRequest Request(string? template = "fedora-42", string? netvm = "sys-firewall",
        QubeClass cls = QubeClass.AppVM, string label = "blue") => new(cls, label, template, netvm);


    private static async Task<int> JobCountAsync(ConsoleHost host)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        return await db.Jobs.CountAsync();
    }

    /// <summary>Every file and folder under the data folder but the database's own files, which change on any read.</summary>
    private static SortedSet<string> Files(ConsoleHost host) =>
        new(Directory.EnumerateFileSystemEntries(host.DataDir, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetFileName(p).StartsWith("qubesweb.db", StringComparison.Ordinal)), StringComparer.Ordinal);

    /// <summary>The refusal happened at enqueue and nothing was written: no job, no file or folder, no qube.</summary>
    private static async Task<QubeRuleException> RefusedAsync(ConsoleHost host, string name, CreateQubeRequest request)
    {
        var jobsBefore = await JobCountAsync(host);
        var filesBefore = Files(host);
        var qubesBefore = (await host.Get<InventoryService>().ListAsync()).Select(q => q.Name).Order().ToList();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() =>
            host.Get<JobEngine>().EnqueueAsync(JobKind.Create, name, request, CancellationToken.None));

        Assert.Equal(jobsBefore, await JobCountAsync(host));
        Assert.Equal(filesBefore, Files(host));
        Assert.Equal(qubesBefore, (await host.Get<InventoryService>().ListAsync()).Select(q => q.Name).Order().ToList());
        return error;
    }

    [Fact]
    public async Task A_created_AppVM_has_its_row_volumes_and_halted_domain_and_can_then_be_started()
    {
        await using var host = await ConsoleHost.StartAsync();

        var job = await RunAsync(host, JobKind.Create, "project-x", Request());

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Equal(100, job.Progress);
        Assert.Contains(job.Log, l => l.Text == "project-x created: AppVM on fedora-42, label blue, netvm sys-firewall.");

        var qube = await host.Get<InventoryService>().GetAsync("project-x");
        Assert.Equal(QubeClass.AppVM, qube.Class);
        Assert.Equal("fedora-42", qube.Template?.Name);
        Assert.Equal("blue", qube.Label.Name);
        Assert.Equal("sys-firewall", qube.NetVm?.Name);

        var dir = Path.Combine(host.PoolDir, "project-x");
        var priv = Path.Combine(dir, "private.qcow2");
        var vol = Path.Combine(dir, "volatile.qcow2");
        // Only the private volume persists; the root snapshot and the volatile volume are made at each start.
        Assert.Equal(["private.qcow2"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)!).Order().ToArray());
        var privInfo = await QemuImg.InfoAsync(priv);
        Assert.Equal(2L << 30, privInfo.VirtualSizeBytes);
        Assert.Null(privInfo.BackingFile);
        Assert.Equal(priv, Assert.Single(qube.Volumes, v => v.Kind == VolumeKind.Private).Path);
        Assert.Equal(vol, Assert.Single(qube.Volumes, v => v.Kind == VolumeKind.Volatile).Path);
        var snap = Path.Combine(dir, RootFiles.Snapshot);
        Assert.Equal(snap, Assert.Single(qube.Volumes, v => v.Kind == VolumeKind.Root).Path);

        var hypervisor = host.Get<IHypervisor>();
        var domain = hypervisor.GetDomain("project-x");
        Assert.NotNull(domain);
        Assert.Equal(qube.Uuid, domain.Uuid);
        Assert.Equal(RunState.Halted, domain.State);
        Assert.Equal(new QubeMetadata("AppVM", "blue", "fedora-42"), hypervisor.GetMetadata("project-x"));
        var xml = hypervisor.GetXml("project-x");
        Assert.Contains(priv, xml);
        Assert.Contains(vol, xml);

        var start = await RunAsync(host, JobKind.Start, "project-x");
        Assert.True(start.State == JobState.Succeeded, start.Error);
        Assert.Equal(RunState.Running, hypervisor.GetDomain("project-x")!.State);
        Assert.Equal(10L << 30, (await QemuImg.InfoAsync(vol)).VirtualSizeBytes);
        Assert.Equal(Path.Combine(host.PoolDir, "fedora-42", RootFiles.Revision(1)), (await QemuImg.ChainAsync(snap))[1].Path);
    }

    private static readonly string[] BadNames =
    [
        "1stVM", "-helpVM", "--helpVM", "_x", ".x", "test-###", "$(id)", "../x", "a/b", "%2e%2e%2f", "x-dm", "Domain-0", "none", "default",
        "a" + new string('b', 31), "with space", "quo'te", "dq\"x", "semi;colon", "nul\0x", "evil\u202Etxt", "zero\u200Bwidth",
        new string('a', 4096), "", "dom0",
    ];

    [Fact]
    public async Task Every_bad_name_is_refused_at_enqueue_and_nothing_is_written()
    {
        await using var host = await ConsoleHost.StartAsync();
        var failures = new List<string>();

        foreach (var name in BadNames)
        {
            try
            {
                var error = await RefusedAsync(host, name, Request());
                // dom0 is a valid name that is taken; every other one breaks a name rule.
                if (name == "dom0") Assert.Contains("already exists", error.Message);
                else Assert.StartsWith("Invalid name", error.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                failures.Add($"{Escape(name)}: {e.Message}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.False(Directory.Exists(Path.Combine(host.DataDir, "x")));
        Assert.False(Directory.Exists(Path.Combine(host.PoolDir, "a")));
    }

    private static string Escape(string s) =>
        s.Length > 40 ? $"({s.Length} chars)" : string.Concat(s.Select(c => c is < ' ' or > '~' ? $"\\u{(int)c:X4}" : c.ToString()));

    [Fact]
    public async Task An_existing_name_an_unknown_template_an_AppVM_as_template_and_a_StandaloneVM_are_refused_clearly()
    {
        await using var host = await ConsoleHost.StartAsync();

        var existing = await RefusedAsync(host, "sys-net", Request());
        Assert.Equal("A qube named 'sys-net' already exists; choose another name.", existing.Message);

        var unmanaged = await RefusedAsync(host, "legacy-vm", Request());
        Assert.Contains("libvirt already has a domain named 'legacy-vm'", unmanaged.Message);

        var unknownTemplate = await RefusedAsync(host, "new-one", Request(template: "fedora-99"));
        Assert.Equal("There is no template named 'fedora-99'.", unknownTemplate.Message);

        var noTemplate = await RefusedAsync(host, "new-one", Request(template: null));
        Assert.Equal("An AppVM needs a template: choose a TemplateVM.", noTemplate.Message);

        var appVmTemplate = await RefusedAsync(host, "new-one", Request(template: "work"));
        Assert.Equal("'work' is an AppVM; an AppVM's template must be a TemplateVM.", appVmTemplate.Message);
        Assert.Contains("must be a TemplateVM", appVmTemplate.Message);

        var standalone = await RefusedAsync(host, "new-one", Request(template: null, cls: QubeClass.StandaloneVM));
        Assert.StartsWith("This creates AppVMs and disposables based on a template; a StandaloneVM is made another way", standalone.Message);

        var dispOnPlainAppVm = await RefusedAsync(host, "new-one", Request(template: "work", cls: QubeClass.DispVM));
        Assert.Equal("'work' is not a disposable template; turn on \"Disposable template\" on its page first (Qubes' template_for_dispvms).", dispOnPlainAppVm.Message);

        var notANetVm = await RefusedAsync(host, "new-one", Request(netvm: "work"));
        Assert.Equal("'work' does not provide network; choose a qube with provides_network set, or none.", notANetVm.Message);

        var unknownNetVm = await RefusedAsync(host, "new-one", Request(netvm: "sys-nope"));
        Assert.Equal("There is no qube named 'sys-nope' to use as netvm.", unknownNetVm.Message);

        var unknownLabel = await RefusedAsync(host, "new-one", Request(label: "mauve"));
        Assert.Equal("There is no label 'mauve'.", unknownLabel.Message);
    }

    [Fact]
    public async Task A_non_empty_pool_folder_for_the_name_fails_the_job_naming_the_folder_and_the_folder_is_kept()
    {
        await using var host = await ConsoleHost.StartAsync();
        var dir = Path.Combine(host.PoolDir, "project-z");
        Directory.CreateDirectory(dir);
        var precious = Path.Combine(dir, "keep-me.txt");
        await File.WriteAllTextAsync(precious, "not the console's");

        var job = await RunAsync(host, JobKind.Create, "project-z", Request());

        Assert.Equal(JobState.Failed, job.State);
        Assert.Equal($"The pool already has a folder for 'project-z' ({dir}); remove or rename it first.", job.Error);
        Assert.Equal("not the console's", await File.ReadAllTextAsync(precious));
        Assert.Equal([precious], Directory.GetFileSystemEntries(dir));
        Assert.Null(await host.Get<InventoryService>().FindAsync("project-z"));
        Assert.Null(host.Get<IHypervisor>().GetDomain("project-z"));
    }

    [Fact]
    public async Task A_failure_at_the_last_step_removes_the_domain_row_and_volumes_it_made()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var taken = hypervisor.GetDomain("legacy-vm")!.Uuid;
        // Fault: the row gets legacy-vm's UUID, so defining the domain (the last step) is refused by libvirt.
        // (A trigger body cannot take parameters; the value is a GUID we format.)
        var uuid = taken.ToString().ToUpperInvariant();
#pragma warning disable EF1003
        await using (var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync())
            await db.Database.ExecuteSqlRawAsync(
                "CREATE TRIGGER fault_uuid AFTER INSERT ON Qubes WHEN NEW.Name = 'halfway' BEGIN UPDATE Qubes SET Uuid = '" + uuid + "' WHERE Id = NEW.Id; END;");
#pragma warning restore EF1003

        var job = await RunAsync(host, JobKind.Create, "halfway", Request());

        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains("legacy-vm", job.Error);
        Assert.Contains(job.Log, l => l.Text == "Removing what this job made." && l.Level == JobLogLevel.Warning);
        Assert.Null(await host.Get<InventoryService>().FindAsync("halfway"));
        Assert.Null(hypervisor.GetDomain("halfway"));
        Assert.False(Directory.Exists(Path.Combine(host.PoolDir, "halfway")));
        Assert.Equal(RunState.Halted, hypervisor.GetDomain("legacy-vm")!.State);
        await using (var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync())
            Assert.False(await db.Locks.AnyAsync(l => l.QubeName == "halfway"));
    }

    [Fact]
    public async Task A_failure_in_a_pre_existing_empty_pool_folder_removes_the_volumes_but_keeps_the_folder()
    {
        await using var host = await ConsoleHost.StartAsync();
        var dir = Path.Combine(host.PoolDir, "halfway");
        Directory.CreateDirectory(dir);
        // Fault: the inventory refuses the row, after the private volume was made.
        await using (var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync())
            await db.Database.ExecuteSqlRawAsync(
                "CREATE TRIGGER fault_row BEFORE INSERT ON Qubes WHEN NEW.Name = 'halfway' BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");

        var job = await RunAsync(host, JobKind.Create, "halfway", Request());

        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains(job.Log, l => l.Text.StartsWith("Private volume made in"));
        Assert.Null(await host.Get<InventoryService>().FindAsync("halfway"));
        Assert.Null(host.Get<IHypervisor>().GetDomain("halfway"));
        Assert.True(Directory.Exists(dir), "the job removed a folder it did not make");
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    private static async Task<long> InsertRunningCreateAsync(string dataDir, string target)
    {
        var options = new DbContextOptionsBuilder<InventoryDbContext>();
        DataExtensions.Configure(options, Path.Combine(dataDir, "qubesweb.db"));
        await using var db = new InventoryDbContext(options.Options);
        var job = new Job
        {
            Kind = JobKind.Create.Name, Target = target, State = JobState.Running, Progress = 30, Step = "Creating the volatile volume",
            Arguments = JobArguments.Serialize(Request()), CreatedUtc = DateTime.UtcNow, StartedUtc = DateTime.UtcNow,
        };
        db.Jobs.Add(job);
        await db.SaveChangesAsync();
        db.Locks.Add(new QubeLock { QubeName = target, JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
        await db.SaveChangesAsync();
        return job.Id;
    }

    [Fact]
    public async Task A_create_left_running_by_a_crash_is_marked_interrupted_and_its_half_made_folder_removed()
    {
        var dataDir = ConsoleHost.NewDataDir();
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        var dir = Path.Combine(first.PoolDir, "crashed");
        await first.StopAsync();
        Directory.CreateDirectory(dir);
        await QemuImg.CreateAsync(Path.Combine(dir, "private.qcow2"), CreateQubeJob.PrivateSize);
        var orphan = await InsertRunningCreateAsync(dataDir, "crashed");

        await using var host = await ConsoleHost.StartAsync(dataDir: dataDir);

        var job = (await host.Get<JobEngine>().GetAsync(orphan))!;
        Assert.Equal(JobState.Interrupted, job.State);
        Assert.NotNull(job.FinishedUtc);
        Assert.Contains(job.Log, l => l.Level == JobLogLevel.Warning && l.Text.Contains("interrupted"));
        Assert.Contains(job.Log, l => l.Text == $"Removed the half-made volumes in {dir}.");
        Assert.False(Directory.Exists(dir));
        Assert.Null(await host.Get<InventoryService>().FindAsync("crashed"));
        await using (var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync())
            Assert.False(await db.Locks.AnyAsync(l => l.QubeName == "crashed"));

        // The name is free again: creating it now succeeds.
        var again = await RunAsync(host, JobKind.Create, "crashed", Request());
        Assert.True(again.State == JobState.Succeeded, again.Error);
    }

    [Fact]
    public async Task Crash_recovery_of_a_create_keeps_files_in_its_folder_that_it_did_not_make()
    {
        var dataDir = ConsoleHost.NewDataDir();
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        var dir = Path.Combine(first.PoolDir, "crashed");
        await first.StopAsync();
        Directory.CreateDirectory(dir);
        var precious = Path.Combine(dir, "keep-me.txt");
        await File.WriteAllTextAsync(precious, "not the console's");
        var orphan = await InsertRunningCreateAsync(dataDir, "crashed");

        await using var host = await ConsoleHost.StartAsync(dataDir: dataDir);

        var job = (await host.Get<JobEngine>().GetAsync(orphan))!;
        Assert.Equal(JobState.Interrupted, job.State);
        Assert.Equal("not the console's", await File.ReadAllTextAsync(precious));
        Assert.Contains(job.Log, l => l.Text.Contains("kept the folder"));
    }
}
