using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Qubes;

/// <summary>
/// Removes a halted qube: its libvirt domain, its inventory row, then its volume files and its pool folder. The
/// inventory's rules (dom0, a template with dependents, a netvm with clients) are checked before the job is queued and
/// again when it runs. Files go last, so a removal cut short never leaves a row whose disks are gone; only files the
/// inventory listed for the qube, and the folder <c>&lt;pool&gt;/&lt;name&gt;</c>, are ever deleted.
/// </summary>
public sealed class RemoveQubeJob(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, IOptions<EstateOptions> options,
    IServiceProvider services, ILogger<RemoveQubeJob> log) : IJobKind
{
    public JobKind Kind => JobKind.Remove;

    public string Describe(string target) => $"Remove {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var qube = await inventory.GetAsync(target, ct);
        QubeRules.EnsureNotAdminVm(qube);
        EnsureHalted(target);
        await inventory.EnsureRemovableAsync(target, ct);
    }

    /// <summary>Qubes removes only halted qubes; whether it runs is libvirt's to say, so libvirt must be reachable.</summary>
    private void EnsureHalted(string name)
    {
        if (!hypervisor.Connection.IsUp)
            throw new HypervisorUnavailableException($"libvirt is not reachable ({hypervisor.Connection.Error}); a qube can be removed only when the console can see that it is halted.");
        var state = hypervisor.GetDomain(name)?.State;
        if (state is null or RunState.Halted) return;
        throw new QubeRuleException(state == RunState.Running
            ? $"'{name}' is running; shut it down first."
            : $"'{name}' is {state.ToString()!.ToLowerInvariant()}; shut it down first.");
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var name = job.Target;
        // Checked again: the qube may have started, or gained dependents, while the job was queued.
        var qube = await inventory.GetAsync(name, ct);
        QubeRules.EnsureNotAdminVm(qube);
        EnsureHalted(name);
        await inventory.EnsureRemovableAsync(name, ct);
        ct.ThrowIfCancellationRequested();
        // An instant copy still being made independent: its copy stops first (and its part file goes), rather than
        // fail half-way on files this job deletes. Resolved here: the commands need the job engine, built from the kinds.
        var detach = services.GetRequiredService<DetachCommands>();
        if (await detach.ActiveAsync(name, ct) is not null)
        {
            try
            {
                await detach.PauseAsync(name, ct);
                await job.LogAsync("Stopped the copy that was making it independent of its source.");
            }
            catch (QubeRuleException)
            {
                // It finished meanwhile: independent, nothing to stop.
            }
        }

        // From here on the removal goes to its end: a cancel half-way would leave a qube without a domain or disks.
        await job.ProgressAsync(20, "Undefining its domain");
        var domain = hypervisor.GetDomain(name);
        if (domain is null)
            await job.LogAsync($"libvirt has no domain named {name}; nothing to undefine.");
        else if (domain.Uuid != qube.Uuid)
            // Same name, another identity: not this qube's domain, so it is left alone (it shows as unmanaged).
            await job.LogAsync($"libvirt's domain {name} has UUID {domain.Uuid}, not the qube's {qube.Uuid}; it is left alone.", Data.Jobs.JobLogLevel.Warning);
        else
        {
            hypervisor.Undefine(name);
            FaultPoints.Hit("undefined");
            await job.LogAsync($"Undefined the domain {name}.");
        }

        await job.ProgressAsync(50, "Removing it from the inventory");
        var removed = await inventory.RemoveAsync(name, CancellationToken.None);
        FaultPoints.Hit("row-removed");
        await job.LogAsync($"Removed {name} from the inventory.");

        // The undefine's event makes the monitor reconcile; one that listed the inventory before the row went defines
        // the domain again. Waiting for a reconciliation of our own lets any such one finish (they are serialized), and
        // every later one sees the row gone; then a domain defined again in between is undefined for good.
        try
        {
            await estate.ReconcileAsync(CancellationToken.None);
            if (domain is not null && domain.Uuid == qube.Uuid && hypervisor.GetDomain(name) is { } again && again.Uuid == qube.Uuid)
            {
                hypervisor.Undefine(name);
                await job.LogAsync($"A reconciliation running during the removal had defined {name} again; undefined it.");
            }
        }
        catch (Exception e) when (e is HypervisorException or HypervisorUnavailableException)
        {
            await job.LogAsync($"Could not check that the domain {name} stayed undefined: {e.Message}", Data.Jobs.JobLogLevel.Warning);
        }

        await job.ProgressAsync(75, "Deleting its volumes");
        var others = (await inventory.ListAsync(CancellationToken.None))
            .SelectMany(q => q.Volumes).Select(v => v.Path).OfType<string>().ToHashSet(StringComparer.Ordinal);
        foreach (var path in removed.Volumes.Select(v => v.Path).OfType<string>())
        {
            if (others.Contains(path))
            {
                await job.LogAsync($"Kept {path}: another qube's volume uses it.", Data.Jobs.JobLogLevel.Warning);
                continue;
            }
            if (File.Exists(path))
            {
                File.Delete(path);
                FaultPoints.Hit("file-deleted");
                await job.LogAsync($"Deleted {path}.");
            }
        }
        if (DeletePoolFolder(name, others) is { } dir)
            await job.LogAsync($"Deleted the folder {dir}.");
        await job.LogAsync($"{name} removed.");
    }

    /// <summary>
    /// Deletes <c>&lt;pool&gt;/&lt;name&gt;</c> (a link there is unlinked, never followed); returns its path, or null when there was none.
    /// Kept whole when another qube's volume lives in it.
    /// </summary>
    private string? DeletePoolFolder(string name, IReadOnlySet<string> otherVolumes)
    {
        var pool = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.Value.PoolDir));
        var dir = Path.GetFullPath(Path.Combine(pool, name));
        // A valid qube name is one path segment, but the folder is checked anyway: never anything outside the pool.
        if (name is "." or ".." || !string.Equals(Path.GetDirectoryName(dir), pool, StringComparison.Ordinal))
            throw new InvalidOperationException($"'{QubeRules.Shown(name)}' does not name a folder inside the pool.");
        var info = new DirectoryInfo(dir);
        if (!info.Exists) return null;
        if (info.LinkTarget is not null)
        {
            info.Delete();
            return dir;
        }
        if (otherVolumes.Any(p => Path.GetFullPath(p).StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
        {
            log.LogWarning("Kept {Dir}: another qube's volume lives in it.", dir);
            return null;
        }
        info.Delete(recursive: true);
        return dir;
    }

    /// <summary>
    /// Died half-way. While the inventory still has the qube, the removal did not happen: nothing is deleted, and a
    /// domain already undefined is defined again from the inventory at reconciliation. Once the row is gone the qube is
    /// removed, and what is left of its pool folder goes too (the lock on its name, held until this step ends, keeps a
    /// new qube of the same name from being made in between).
    /// </summary>
    public async Task RecoverAsync(JobContext job, CancellationToken ct)
    {
        var name = job.Target;
        if (await inventory.FindAsync(name, ct) is not null)
        {
            await job.LogAsync($"{name} is still in the inventory: it was not removed, and nothing was deleted. Remove it again if you still want to.");
            estate.InventoryChanged();
            return;
        }
        var others = (await inventory.ListAsync(ct))
            .SelectMany(q => q.Volumes).Select(v => v.Path).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var dir = DeletePoolFolder(name, others);
        await job.LogAsync(dir is null
            ? $"{name} had been removed from the inventory; no files of it were left in the pool."
            : $"{name} had been removed from the inventory; deleted what was left of it in {dir}.");
    }
}
