using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>What a stop did to a save_on_stop root.</summary>
public sealed record SettleOutcome(string Qube, int? CommittedRevision, int? PreviousRevision, bool DiscardedUnchanged)
{
    public static readonly SettleOutcome Nothing = new("", null, null, false);
}

/// <summary>
/// Qubes' volume lifecycle on the pool (core-admin qubes/storage): before a start, the runtime overlays (a
/// template's dirty overlay on its current revision, an AppVM's snapshot of its template's current revision, a
/// fresh volatile volume); after a stop, the dirty overlay committed as the next revision, the snapshot and volatile
/// volume dropped, and old revisions let go (<see cref="RootRetention"/>). The inventory records which revision every
/// overlay was made from, which is what "outdated" is computed from, so it survives a restart of the console.
/// Every step runs under the qube's lock (<see cref="RootLocks"/>).
/// </summary>
public sealed class RootLifecycle(IDbContextFactory<InventoryDbContext> contexts, RootLocks locks, EstateMonitor estate,
    VolumeUsage usage, RootRetention retention, RootMeasures measures, ILogger<RootLifecycle> log, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

    private static bool IsSnapOnStart(Qube q) => q.Class is QubeClass.AppVM or QubeClass.DispVM;

    /// <summary>
    /// Makes the overlays and volatile volume a start needs. <paramref name="onlyMissing"/>: the qube was started
    /// outside the console (the test driver lets that happen), so only what is not there yet is made.
    /// </summary>
    public async Task PrepareStartAsync(string name, Func<string, Task>? note = null, bool onlyMissing = false, CancellationToken ct = default)
    {
        note ??= _ => Task.CompletedTask;
        using var own = await locks.LockAsync(name, ct);
        string? templateName, rootOwnerName;
        await using (var db0 = await contexts.CreateDbContextAsync(ct))
        {
            var names = await db0.Qubes.Where(q => q.Name == name)
                .Select(q => new { Template = q.Template!.Name, Its = q.Template!.Template!.Name }).FirstOrDefaultAsync(ct);
            (templateName, rootOwnerName) = (names?.Template, names?.Its);
        }
        // Locks are taken from the qube towards its templates, never the other way, so two starts cannot deadlock.
        using var template = templateName is null ? null : await locks.LockAsync(templateName, ct);

        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.Include(q => q.Volumes).ThenInclude(v => v.Revisions)
            .Include(q => q.Template).ThenInclude(t => t!.Volumes).ThenInclude(v => v.Revisions)
            .Include(q => q.Template).ThenInclude(t => t!.Template).ThenInclude(t => t!.Volumes).ThenInclude(v => v.Revisions)
            .AsSplitQuery().FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
        // A disposable's root is a snapshot of its disposable template's template; its private, a copy of its disposable template's.
        using var rootOwnerLock = qube.Class == QubeClass.DispVM && rootOwnerName is not null ? await locks.LockAsync(rootOwnerName, ct) : null;
        var rootOwner = qube.Class == QubeClass.DispVM ? qube.Template?.Template : qube.Template;
        var changed = false;
        // The images are made side by side (each is its own qemu-img run); the rows are written once all are there.
        var making = new List<Task>();
        // Made once the overlays are: an overlay refused for its chain (ImageChain) leaves no file behind at all.
        var volatiles = new List<(string Path, long Size)>();
        foreach (var v in qube.Volumes.Where(v => v.Path is not null))
        {
            var path = v.Path!;
            if (onlyMissing && File.Exists(path) && (v.Kind != VolumeKind.Root || v.OverlaySourceVolumeId is not null)) continue;
            switch (v.Kind)
            {
                case VolumeKind.Root when v.IsSaveOnStopRoot:
                {
                    if (v.OverlaySourceVolumeId == v.Id && v.OverlayRevision == v.CurrentRevision && File.Exists(path))
                    {
                        // As Qubes does with a dirty volume left by a run that was not committed: its writes are kept.
                        await note($"The root of {name} has uncommitted changes from its last run on revision {v.CurrentRevision}; they are kept.");
                        continue;
                    }
                    var rev = v.Revisions.Single(r => r.Number == v.CurrentRevision);
                    making.Add(RootStore.CreateOverlayAsync(rev.Path, path, Pool, ct));
                    RootRows.SetOverlay(v, v.Id, rev.Number);
                    await note($"Root: a dirty overlay on revision {rev.Number}; it is committed as revision {NextNumber(v)} when {name} stops.");
                    break;
                }
                case VolumeKind.Root when IsSnapOnStart(qube):
                {
                    var source = rootOwner?.Volumes.FirstOrDefault(t => t.IsSaveOnStopRoot)
                        ?? throw new StorageException($"{name} has no template root to snapshot; give it a template first.");
                    var rev = source.Revisions.Single(r => r.Number == source.CurrentRevision);
                    making.Add(RootStore.CreateOverlayAsync(rev.Path, path, Pool, ct));
                    RootRows.SetOverlay(v, source.Id, rev.Number);
                    await note($"Root: a snapshot of {rootOwner!.Name} revision {rev.Number}.");
                    break;
                }
                case VolumeKind.Private when qube.Class == QubeClass.DispVM:
                {
                    var dvm = qube.Template ?? throw new StorageException($"{name} has no disposable template to take a private volume from.");
                    var source = dvm.Volumes.FirstOrDefault(t => t.Kind == VolumeKind.Private && t.Path is not null)
                        ?? throw new StorageException($"{dvm.Name} has no private volume for its disposables.");
                    var inUse = (await db.Volumes.Where(o => o.Kind == VolumeKind.Private && o.OverlaySourceVolumeId == source.Id && o.Id != v.Id
                                                             && o.OverlayRevision != null)
                        .Select(o => o.OverlayRevision!.Value).ToListAsync(ct)).ToHashSet();
                    var runs = estate.StateOf(dvm.Name) is not (Hypervisor.Domains.RunState.Halted or Hypervisor.Domains.RunState.Unknown);
                    try
                    {
                        var (gen, frozen, made) = await DispvmPrivates.CurrentAsync(source.Path!, runs, inUse, Pool, ct);
                        File.Delete(path);
                        making.Add(RootStore.CreateOverlayAsync(frozen, path, Pool, ct));
                        v.OverlaySourceVolumeId = source.Id;
                        v.OverlayRevision = gen;
                        v.OverlayCreatedUtc = made;
                        await note($"Private: a snapshot of {dvm.Name}'s private volume (copy {gen}, made {made:u}), never written back.");
                    }
                    catch (StorageException e)
                    {
                        throw new StorageException($"{dvm.Name}: {e.Message}", e);
                    }
                    break;
                }
                case VolumeKind.Volatile:
                    volatiles.Add((path, v.VirtualSizeBytes));
                    // Stamped, so a stop settled late never deletes the volume of the next start.
                    v.OverlayCreatedUtc = DateTime.UtcNow;
                    break;
                default:
                    continue;
            }
            changed = true;
        }
        await Task.WhenAll(making);
        await Task.WhenAll(volatiles.Select(x => RootStore.CreateEmptyAsync(x.Path, x.Size, ct)));
        // The files are there, the rows do not say so yet: start-up recovery must take them for what they are.
        FaultPoints.Hit("volumes-made");
        if (changed) await db.SaveChangesAsync(CancellationToken.None);
        if (changed) estate.NotifyChanged();
        if (changed) usage.RefreshSoon(name);
    }

    private static int NextNumber(Volume v) => v.Revisions.Count == 0 ? 1 : v.Revisions.Max(r => r.Number) + 1;

    /// <summary>Whether <paramref name="name"/> has runtime overlays a stop should settle.</summary>
    public async Task<bool> NeedsSettleAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await db.Volumes.AnyAsync(v => v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId != null
            && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == name), ct);
    }

    /// <summary>Whether settling <paramref name="name"/> would commit a dirty overlay (a template or standalone).</summary>
    public async Task<bool> HasDirtyOverlayAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await db.Volumes.AnyAsync(v => v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId == v.Id
            && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == name), ct);
    }

    /// <summary>
    /// After a stop: the dirty overlay becomes the next revision (or is dropped when nothing was written), the start
    /// snapshot and the volatile volume go, and revisions nobody needs any more are let go. Overlays made after
    /// <paramref name="stoppedAtUtc"/> belong to a newer start and are left alone. Safe to call twice.
    /// </summary>
    public async Task<SettleOutcome> SettleStoppedAsync(string name, string reason, DateTime stoppedAtUtc,
        Func<string, Task>? note = null, CancellationToken ct = default)
    {
        note ??= _ => Task.CompletedTask;
        int? releasedTemplateVolume = null;
        string? templateName = null;
        var outcome = SettleOutcome.Nothing with { Qube = name };
        using (await locks.LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var qube = await db.Qubes.Include(q => q.Volumes).ThenInclude(v => v.Revisions)
                .FirstOrDefaultAsync(q => q.Name == name, ct);
            if (qube is null) return outcome;
            // The throwaway volumes first, their rows saved with the commit's first write (or once at the end): a
            // crash in between leaves only files recovery deletes anyway. The dirty overlay is committed last.
            foreach (var v in qube.Volumes.Where(v => v.Path is not null).OrderBy(v => v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId == v.Id))
            {
                if (v.OverlayCreatedUtc > stoppedAtUtc) continue;
                if (v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId == v.Id)
                    outcome = await CommitLockedAsync(db, qube, v, reason, note, ct);
                else if (v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId is { } source)
                {
                    RootStore.Delete(v.Path!);
                    releasedTemplateVolume = source;
                    RootRows.SetOverlay(v, null, null);
                }
                else if (v.Kind == VolumeKind.Volatile)
                {
                    RootStore.Delete(v.Path!);
                    v.OverlayCreatedUtc = null;
                }
            }
            if (db.ChangeTracker.HasChanges()) await db.SaveChangesAsync(CancellationToken.None);
            if (releasedTemplateVolume is { } tv)
                templateName = await db.Volumes.Where(v => v.Id == tv)
                    .Select(v => db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).First()).FirstOrDefaultAsync(ct);
            if (outcome.CommittedRevision is not null || outcome.DiscardedUnchanged)
                await retention.RetainAndReportLockedAsync(db, name, qube.Volumes.First(v => v.IsSaveOnStopRoot), note, ct);
        }
        // The snapshot no longer holds its revision: the template may let it go now.
        if (templateName is not null) await retention.ApplyRetentionAsync(templateName, note, ct);
        if (outcome.CommittedRevision is not null) measures.RefreshLater(name);
        // Its overlays went or became a revision: the pages show its new usage without waiting for the timer.
        usage.RefreshSoon(name);
        estate.NotifyChanged();
        return outcome;
    }

    /// <summary>
    /// Drops a halted qube's dirty overlay without committing it (an update that failed or was cancelled): the root
    /// stays on its last committed revision, as if the run had not happened.
    /// </summary>
    public async Task DiscardDirtyAsync(string name, CancellationToken ct = default)
    {
        using (await locks.LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootRows.RootOfAsync(db, name, ct);
            if (root.OverlaySourceVolumeId == root.Id)
            {
                RootStore.Delete(root.Path!);
                RootRows.SetOverlay(root, null, null);
                await db.SaveChangesAsync(CancellationToken.None);
            }
        }
        await SettleStoppedAsync(name, "", DateTime.UtcNow, null, ct);
    }

    private async Task<SettleOutcome> CommitLockedAsync(InventoryDbContext db, Qube qube, Volume v, string reason, Func<string, Task> note, CancellationToken ct)
    {
        var dirty = v.Path!;
        var previous = v.CurrentRevision;
        if (!File.Exists(dirty))
        {
            await note($"The dirty overlay of {qube.Name} is missing; revision {previous} stays current.");
            RootRows.SetOverlay(v, null, null);
            await db.SaveChangesAsync(CancellationToken.None);
            return new SettleOutcome(qube.Name, null, previous, false);
        }
        if (v.OverlayRevision != v.CurrentRevision)
            throw new StorageException($"The dirty overlay of {qube.Name} was made on revision {v.OverlayRevision}, but revision {v.CurrentRevision} is current; it was left as it is.");
        try
        {
            // The header qemu-img check and commit follow must name the current revision, in the pool.
            await ImageChain.EnsureSafeAsync(dirty, Pool, ct);
        }
        catch (Exception e) when (e is UnsafeImageException or ProcessFailedException)
        {
            // Refused, or a header qemu-img cannot read at all: either way not committable, set aside.
            throw await RejectAsync(db, qube, v, previous, e);
        }
        bool changed;
        // Both only read the overlay: the consistency check runs beside the look for data, not after it.
        var check = QemuImg.CheckAsync(dirty, CancellationToken.None);
        try
        {
            changed = await QemuImg.HasOwnDataAsync(dirty, ct);
        }
        catch (ProcessFailedException e)
        {
            try { await check; } catch (ProcessFailedException) { }
            throw await RejectAsync(db, qube, v, previous, e);
        }
        if (!changed)
        {
            try { await check; } catch (ProcessFailedException) { }
            RootStore.Delete(dirty);
            RootRows.SetOverlay(v, null, null);
            await db.SaveChangesAsync(CancellationToken.None);
            await note($"Nothing was written to the root of {qube.Name}; revision {previous} stays current.");
            return new SettleOutcome(qube.Name, null, previous, true);
        }

        var number = NextNumber(v);
        var path = Path.Combine(Path.GetDirectoryName(dirty)!, RootFiles.Revision(number));
        // Journaled first: if the process dies after the rename, start-up recovery finds the file and finishes.
        var rev = new RootRevision
        {
            VolumeId = v.Id, Number = number, Path = path, BackingNumber = previous, CreatedUtc = DateTime.UtcNow,
            Reason = RootRows.Shorten(reason), State = RevisionState.Committing,
        };
        v.Revisions.Add(rev);
        await db.SaveChangesAsync(CancellationToken.None);
        FaultPoints.Hit("commit-journaled");
        try
        {
            // Once begun, a commit is finished: cancelling half-way would only leave more to recover.
            rev.SizeBytes = await check;
            RootStore.RenameCheckedOverlay(dirty, path);
        }
        catch (Exception e) when (e is ProcessFailedException or IOException)
        {
            v.Revisions.Remove(rev);
            db.Revisions.Remove(rev);
            throw await RejectAsync(db, qube, v, previous, e);
        }
        FaultPoints.Hit("commit-renamed");
        await FinishCommitAsync(db, v, rev, measure: false);
        await note($"Committed the root of {qube.Name} as revision {number} (was {previous}).");
        log.LogInformation("Committed {Qube} root revision {Number}", qube.Name, number);
        return new SettleOutcome(qube.Name, number, previous, false);
    }

    /// <summary>
    /// A dirty overlay qemu-img will not commit: the qube must start again on its last good revision, so the overlay
    /// is set aside (not deleted: its writes may still be wanted) and the error says where it went.
    /// </summary>
    private static async Task<StorageException> RejectAsync(InventoryDbContext db, Qube qube, Volume v, int? previous, Exception e)
    {
        var dirty = v.Path!;
        var aside = Path.Combine(Path.GetDirectoryName(dirty)!, RootFiles.Rejected);
        if (File.Exists(dirty)) File.Move(dirty, aside, overwrite: true);
        RootRows.SetOverlay(v, null, null);
        await db.SaveChangesAsync(CancellationToken.None);
        return new StorageException($"Could not commit the root of {qube.Name}: {e.Message.Trim()} It stays on revision {previous}; the uncommitted writes were set aside as {aside}.", e);
    }

    /// <summary>Internal, not private: start-up recovery finishes with it the commits a killed process journaled but never made current.</summary>
    internal static async Task FinishCommitAsync(InventoryDbContext db, Volume v, RootRevision rev, bool measure = true)
    {
        rev.State = RevisionState.Committed;
        if (measure) rev.SizeBytes = await RootRows.SizeOfAsync(rev.Path);
        v.CurrentRevision = rev.Number;
        RootRows.SetOverlay(v, null, null);
        await db.SaveChangesAsync(CancellationToken.None);
    }
}
