// The remove job run by the real console on its embedded demo: what a removal deletes (domain, row, the qube's own
// files and nothing else), what it refuses before queueing (with nothing changed), and recovery after a crash.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.QubeTests;

public sealed class RemoveQubeJobTests
{

    /// <summary>Every file and folder under the data folder but the database's and libvirt's own, which change on their own.</summary>
    private static SortedSet<string> Files(string dataDir) =>
        new(Directory.EnumerateFileSystemEntries(dataDir, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetFileName(p).StartsWith("qubesweb.db", StringComparison.Ordinal)
                        && !p.StartsWith(Path.Combine(dataDir, "libvirt"), StringComparison.Ordinal)), StringComparer.Ordinal);

    /// <summary>What the inventory and libvirt hold, as one comparable value per qube.</summary>
    private static async Task<List<string>> EstateAsync(ConsoleHost host)
    {
        var hypervisor = host.Get<IHypervisor>();
        return (await host.Get<InventoryService>().ListAsync())
            .Select(q => $"{q.Name}|{q.Class}|{q.Template?.Name}|{q.NetVm?.Name}|{q.Volumes.Count}|{hypervisor.GetDomain(q.Name)?.State}")
            .ToList();
    }

    private static async Task<int> JobCountAsync(ConsoleHost host)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        return await db.Jobs.CountAsync();
    }

    /// <summary>The refusal happened at enqueue and nothing changed: no job, the same files, rows and domains.</summary>
    private static async Task<QubeRuleException> RefusedAsync(ConsoleHost host, string name)
    {
        var jobsBefore = await JobCountAsync(host);
        var filesBefore = Files(host.DataDir);
        var estateBefore = await EstateAsync(host);

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Remove, name));

        Assert.Equal(jobsBefore, await JobCountAsync(host));
        Assert.Equal(filesBefore, Files(host.DataDir));
        Assert.Equal(estateBefore, await EstateAsync(host));
        return error;
    }

    [Fact]
    public async Task Removing_a_halted_AppVM_deletes_its_domain_its_row_and_its_files_and_nothing_else()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var vault = await host.Get<InventoryService>().GetAsync("vault");
        Assert.Equal(RunState.Halted, hypervisor.GetDomain("vault")?.State);
        var dir = Path.Combine(host.PoolDir, "vault");
        // Halted, it has its private volume; its root snapshot and volatile volume exist only while it runs.
        var own = vault.Volumes.Select(v => v.Path!).Where(File.Exists).ToList();
        Assert.Equal([Path.Combine(dir, "private.qcow2")], own);
        var others = Files(host.DataDir).Where(p => p != dir && !p.StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal)).ToList();

        var job = await RunAsync(host, JobKind.Remove, "vault");

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Equal("Remove vault", host.Get<JobEngine>().Describe(job));
        Assert.Contains(job.Log, l => l.Text == "vault removed.");
        Assert.Null(await host.Get<InventoryService>().FindAsync("vault"));
        Assert.Null(hypervisor.GetDomain("vault"));
        Assert.All(own, p => Assert.False(File.Exists(p), p));
        Assert.False(Directory.Exists(dir));
        Assert.Equal(others, Files(host.DataDir).ToList());
        // A later reconciliation does not bring the domain back, nor list it as unmanaged.
        var report = await host.Get<EstateMonitor>().ReconcileAsync();
        Assert.DoesNotContain("vault", report.Defined);
        Assert.DoesNotContain(report.Unmanaged, u => u.Name == "vault");
        Assert.Null(hypervisor.GetDomain("vault"));
        // The name is free again.
        await SucceedsAsync(host, JobKind.Create, "vault", new CreateQubeRequest(QubeClass.AppVM, "black", "debian-13", null));
    }

    [Fact]
    public async Task Removing_a_running_qube_is_refused_saying_to_shut_it_down_first_and_nothing_changes()
    {
        await using var host = await ConsoleHost.StartAsync();
        Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain("work")?.State);

        var error = await RefusedAsync(host, "work");

        Assert.Equal("'work' is running; shut it down first.", error.Message);
    }

    [Fact]
    public async Task Removing_a_template_with_dependents_is_refused_naming_them_and_nothing_changes()
    {
        await using var host = await ConsoleHost.StartAsync();

        var error = await RefusedAsync(host, "debian-13");

        Assert.Equal("'debian-13' is the template of 4 qube(s): banking, mail, media, vault. Switch them to another template or remove them first.", error.Message);
    }

    [Fact]
    public async Task Removing_dom0_or_an_unknown_qube_is_refused_and_nothing_changes()
    {
        await using var host = await ConsoleHost.StartAsync();

        var dom0 = await RefusedAsync(host, "dom0");
        var missing = await RefusedAsync(host, "nope");

        Assert.Equal("'dom0' is the admin qube and is read-only.", dom0.Message);
        Assert.Equal("There is no qube named 'nope'.", missing.Message);
    }

    /// <summary>A console stopped with a remove job on vault left running; <paramref name="rowRemoved"/> says how far it got.</summary>
    private static async Task<(string DataDir, long JobId)> CutOffRemovalAsync(bool rowRemoved)
    {
        var dataDir = ConsoleHost.NewDataDir();
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        if (rowRemoved) await first.Get<InventoryService>().RemoveAsync("vault");
        await first.StopAsync();
        var options = new DbContextOptionsBuilder<InventoryDbContext>();
        DataExtensions.Configure(options, Path.Combine(dataDir, "qubesweb.db"));
        await using var db = new InventoryDbContext(options.Options);
        var job = new Job { Kind = JobKind.Remove.Name, Target = "vault", State = JobState.Running, Progress = 50, Step = "Removing it from the inventory", CreatedUtc = DateTime.UtcNow, StartedUtc = DateTime.UtcNow };
        db.Jobs.Add(job);
        await db.SaveChangesAsync();
        db.Locks.Add(new QubeLock { QubeName = "vault", JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
        await db.SaveChangesAsync();
        return (dataDir, job.Id);
    }

    [Fact]
    public async Task A_removal_cut_off_after_the_row_went_deletes_the_leftover_pool_folder_at_start_up()
    {
        var (dataDir, jobId) = await CutOffRemovalAsync(rowRemoved: true);
        var dir = Path.Combine(dataDir, "pool", "vault");
        Assert.True(Directory.Exists(dir));
        var others = Files(dataDir).Where(p => p != dir && !p.StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal)).ToList();

        await using var host = await ConsoleHost.StartAsync(dataDir: dataDir);

        var job = (await host.Get<JobEngine>().GetAsync(jobId))!;
        Assert.Equal(JobState.Interrupted, job.State);
        Assert.Contains(job.Log, l => l.Text == $"vault had been removed from the inventory; deleted what was left of it in {dir}.");
        Assert.False(Directory.Exists(dir));
        Assert.Equal(others, Files(dataDir).ToList());
        Assert.Null(await host.Get<InventoryService>().FindAsync("vault"));
    }

    [Fact]
    public async Task A_removal_cut_off_before_the_row_went_leaves_the_qube_and_its_files_and_defines_its_domain_again()
    {
        var (dataDir, jobId) = await CutOffRemovalAsync(rowRemoved: false);
        var filesBefore = Files(dataDir);

        await using var host = await ConsoleHost.StartAsync(dataDir: dataDir);

        var job = (await host.Get<JobEngine>().GetAsync(jobId))!;
        Assert.Equal(JobState.Interrupted, job.State);
        Assert.Contains(job.Log, l => l.Text.StartsWith("vault is still in the inventory: it was not removed, and nothing was deleted."));
        Assert.NotNull(await host.Get<InventoryService>().FindAsync("vault"));
        Assert.Equal(filesBefore, Files(dataDir));
        Assert.Equal(RunState.Halted, host.Get<IHypervisor>().GetDomain("vault")?.State);
        // The lock is released once recovery has run: the qube can be removed again.
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Remove, "vault")).State);
    }
}
