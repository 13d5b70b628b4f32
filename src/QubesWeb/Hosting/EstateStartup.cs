using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using QubesWeb.Data;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Demo;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;

namespace QubesWeb.Hosting;

/// <summary>
/// The start-up sequence: data folder, migrations, dom0, the demo estate on first start, then reconciliation with
/// libvirt. An unreachable libvirt does not stop the console: it starts, says so, and reconciles when libvirt is back.
/// </summary>
public sealed class EstateStartup(IOptions<QubesWebOptions> options, IDbContextFactory<InventoryDbContext> contexts,
    Data.Qubes.Inventory inventory, EstateMonitor estate, DemoEstate demo, LibvirtHypervisor hypervisor, RootRecovery recovery,
    ILogger<EstateStartup> log) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        var o = options.Value;
        // Traversable but not listable: a real hypervisor's qemu runs as another user and must reach the images.
        PrivateFiles.CreateFolder(o.DataDir);
        PrivateFiles.CreateFolder(o.PoolDir);
        PrivateFiles.CreateFolder(o.KeysDir, PrivateFiles.OwnerOnlyFolderMode);
        // A folder made by an older console (0755 folders, 0644 images) or by hand: narrowed before anything is read.
        var tightened = PrivateFiles.Tighten(o.DataDir, [o.KeysDir]);
        foreach (var line in PrivateFiles.Describe(o.DataDir, tightened))
            log.LogWarning("The data folder {DataDir} was readable by other users; narrowed {Change}", o.DataDir, line);
        if (Hypervisor.Storage.FileReaper.Sweep(o.PoolDir) is > 0 and var swept)
            log.LogInformation("Deleted {Count} old image file(s) a stopped console had let go of but not yet deleted", swept);
        CreateOwnerOnlyFile(o.DatabasePath);
        await using (var db = await contexts.CreateDbContextAsync(ct))
        {
            // Only when a migration is pending (a new inventory, an upgrade): MigrateAsync also compares the model with
            // the migrations' snapshot, every time, and that alone cost most of a second of CPU at each start.
            if ((await db.Database.GetPendingMigrationsAsync(ct)).Any())
                await db.Database.MigrateAsync(ct);
        }
        await inventory.EnsureAdminVmAsync(ct);
        if (o.IsDemo)
            await demo.EnsureSeededAsync(o.PoolDir, ct);
        if (string.IsNullOrWhiteSpace(o.LibvirtUri))
            DemoEstate.WriteNodeFile(o.DemoNodeFile);
        hypervisor.Open();

        try
        {
            var report = await estate.ReconcileAsync(ct);
            log.LogInformation("Reconciled {Qubes} qubes with {Domains} libvirt domains; {Unmanaged} unmanaged",
                report.Qubes, report.Domains, report.Unmanaged.Count);
            await estate.AlignDomainsAsync(ct);
            // Half-done commits, stale snapshots of qubes that no longer run: settled before anything starts.
            var toCommit = await recovery.RecoverAsync(name => estate.StateOf(name) == RunState.Halted, ct);
            if (toCommit.Count > 0)
                log.LogWarning("Uncommitted writes of halted qubes are committed by jobs: {Qubes}", string.Join(", ", toCommit));
            if (o.IsDemo && hypervisor.Connection.IsUp)
                await demo.BootAsync(ct);
        }
        catch (HypervisorUnavailableException e)
        {
            log.LogError("Starting without libvirt: {Error}", e.Message);
        }
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// The inventory is made owner-only before SQLite first opens it (whatever the umask); SQLite gives its -wal and
    /// -shm files the database's mode, and the process umask covers them as well.
    /// </summary>
    private static void CreateOwnerOnlyFile(string path)
    {
        if (File.Exists(path) || OperatingSystem.IsWindows()) return;
        using var _ = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
    }
}
