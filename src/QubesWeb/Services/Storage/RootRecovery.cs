using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Services.Storage;

/// <summary>
/// Start-up recovery of the roots: a killed process (a crash, a power cut) may have left any storage step half-done,
/// and every one of them is written so that what is found here can be finished or undone.
/// </summary>
public sealed class RootRecovery(IDbContextFactory<InventoryDbContext> contexts, RootLocks locks, RootRetention retention,
    ILogger<RootRecovery> log, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

    private List<string> _pendingCommits = [];

    /// <summary>The halted qubes start-up recovery found with writes still to commit (taken once, by the commit jobs).</summary>
    public IReadOnlyList<string> TakePendingCommits() => Interlocked.Exchange(ref _pendingCommits, []);

    /// <summary>
    /// Start-up recovery, after reconciliation: finishes or drops commits a killed process left half-done, drops the
    /// overlays of qubes that are not running (stale snapshots), and returns the halted qubes whose dirty overlay
    /// holds writes still to be committed. <paramref name="isHalted"/> says what libvirt reports.
    /// </summary>
    public async Task<IReadOnlyList<string>> RecoverAsync(Func<string, bool> isHalted, CancellationToken ct = default)
    {
        var toCommit = new List<string>();
        List<string> names;
        await using (var db = await contexts.CreateDbContextAsync(ct))
            names = await db.Qubes.Where(q => q.Volumes.Any(v => v.Kind == VolumeKind.Root || v.Kind == VolumeKind.Volatile))
                .Select(q => q.Name).ToListAsync(ct);
        foreach (var name in names)
        {
            using var _ = await locks.LockAsync(name, ct);
            await using var db = await contexts.CreateDbContextAsync(ct);
            var qube = await db.Qubes.Include(q => q.Volumes).ThenInclude(v => v.Revisions).FirstAsync(q => q.Name == name, ct);
            foreach (var root in qube.Volumes.Where(v => v.IsSaveOnStopRoot))
            {
                foreach (var rev in root.Revisions.Where(r => r.State == RevisionState.Committing).ToList())
                {
                    if (File.Exists(rev.Path))
                    {
                        await RootLifecycle.FinishCommitAsync(db, root, rev);
                        log.LogWarning("Finished the commit of {Qube} revision {Number} that a stopped process left half-done", name, rev.Number);
                    }
                    else
                    {
                        root.Revisions.Remove(rev);
                        db.Revisions.Remove(rev);
                        await db.SaveChangesAsync(ct);
                        log.LogWarning("Dropped the commit of {Qube} revision {Number} that a stopped process left before its rename", name, rev.Number);
                    }
                }
                foreach (var rev in root.Revisions)
                {
                    File.Delete(rev.Path + ".compact.part");
                    // A detach's copy never named: the revision it was for still reads through its source.
                    File.Delete(RootDetach.PartOf(rev.Path));
                }
                await RepairChainLockedAsync(db, name, root, ct);
            }
            // A launch killed while it copied this (disposable) template's private for its disposables: the copy was
            // never named, and would stay beside the generations until a copy took its number again.
            if (qube.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private)?.Path is { } priv
                && DispvmPrivates.DeleteUnfinished(Path.GetDirectoryName(priv)!) is > 0 and var unfinished)
                log.LogWarning("Deleted {Count} unfinished copy(ies) of {Qube}'s private volume that a stopped process left", unfinished, name);
            if (!isHalted(name)) continue;
            foreach (var v in qube.Volumes.Where(v => v.Path is not null))
            {
                if (v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId == v.Id)
                {
                    // An overlay whose chain is refused goes to the commit job too, which sets it aside with the reason.
                    if (File.Exists(v.Path!) && (!await IsSafeAsync(v.Path!, ct) || await QemuImg.HasOwnDataAsync(v.Path!, ct))) toCommit.Add(name);
                    else { RootStore.Delete(v.Path!); RootRows.SetOverlay(v, null, null); }
                }
                else if (v.Kind == VolumeKind.Root && (v.OverlaySourceVolumeId is not null || File.Exists(v.Path!)))
                {
                    RootStore.Delete(v.Path!);
                    RootRows.SetOverlay(v, null, null);
                    log.LogInformation("Removed the stale root snapshot of {Qube}, which is not running", name);
                }
                else if (v.Kind == VolumeKind.Volatile)
                {
                    RootStore.Delete(v.Path!);
                    v.OverlayCreatedUtc = null;
                }
            }
            await db.SaveChangesAsync(ct);
        }
        foreach (var name in names) await retention.ApplyRetentionAsync(name, null, ct);
        _pendingCommits = toCommit;
        return toCommit;
    }

    /// <summary>
    /// Brings revision rows in line with the files after a crash during a merge: a revision whose file is gone and
    /// that nothing is written on any more is dropped; backing links are read from the files themselves.
    /// </summary>
    private async Task RepairChainLockedAsync(InventoryDbContext db, string name, Volume root, CancellationToken ct)
    {
        var byPath = root.Revisions.ToDictionary(r => Path.GetFullPath(r.Path), r => r.Number);
        foreach (var r in root.Revisions.Where(r => File.Exists(r.Path)))
        {
            var backing = (await QemuImg.InfoAsync(r.Path, ct)).BackingFile;
            int? number = backing is null ? null
                : byPath.TryGetValue(Path.GetFullPath(backing, Path.GetDirectoryName(Path.GetFullPath(r.Path))!), out var n) ? n : r.BackingNumber;
            if (number != r.BackingNumber)
            {
                log.LogWarning("{Qube} revision {Number} is written on {Backing}, not {Recorded}; recorded as the file says", name, r.Number, number, r.BackingNumber);
                r.BackingNumber = number;
            }
        }
        foreach (var r in root.Revisions.Where(r => !File.Exists(r.Path) && root.Revisions.All(c => c.BackingNumber != r.Number)).ToList())
        {
            if (r.Number == root.CurrentRevision)
            {
                log.LogError("The file of {Qube}'s current revision {Number} is missing ({Path})", name, r.Number, r.Path);
                continue;
            }
            root.Revisions.Remove(r);
            db.Revisions.Remove(r);
        }
        await db.SaveChangesAsync(ct);
    }

    private async Task<bool> IsSafeAsync(string image, CancellationToken ct)
    {
        try
        {
            await ImageChain.EnsureSafeAsync(image, Pool, ct);
            return true;
        }
        catch (UnsafeImageException e)
        {
            log.LogWarning("{Error}", e.Message);
            return false;
        }
    }
}
