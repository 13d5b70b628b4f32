using System.Collections.Concurrent;
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

/// <summary>A storage step failed; the message says what state the qube was left in.</summary>
public sealed class StorageException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Qubes' volume lifecycle on the pool (core-admin qubes/storage): before a start, the runtime overlays (a
/// template's dirty overlay on its current revision, an AppVM's snapshot of its template's current revision, a
/// fresh volatile volume); after a stop, the dirty overlay committed as the next revision, the snapshot and volatile
/// volume dropped, and old revisions let go. The inventory records which revision every overlay was made from, which
/// is what "outdated" is computed from, so it survives a restart of the console.
///
/// Every step for one qube runs under that qube's lock; an AppVM's steps also take its template's lock, always
/// after their own, so the order is fixed and cannot deadlock.
/// </summary>
public sealed class RootVolumes(IDbContextFactory<InventoryDbContext> contexts, EstateMonitor estate, VolumeUsage usage,
    ReleasedRevisions released, ILogger<RootVolumes> log, Microsoft.Extensions.Options.IOptions<Hosting.QubesWebOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

    public const int MaxRevisionsToKeep = 10;

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private List<string> _pendingCommits = [];
    private readonly ConcurrentDictionary<string, (long Allocated, long Compacted)> _reclaimable = new(StringComparer.Ordinal);

    /// <summary>The last measure of each root's current chain (allocated against compacted bytes), by qube name.</summary>
    public IReadOnlyDictionary<string, (long Allocated, long Compacted)> Reclaimable => _reclaimable;

    private readonly ConcurrentDictionary<string, Task> _measures = new(StringComparer.Ordinal);
    private static readonly TimeSpan MeasureDelay = TimeSpan.FromSeconds(1);

    /// <summary>Completes when the measures scheduled after changes so far have run (benchmarks wait on it, not on a clock).</summary>
    public Task MeasuresSettledAsync() => Task.WhenAll(_measures.Values.Append(usage.SettledAsync()));

    /// <summary>
    /// Measures <paramref name="name"/>'s new current revision off the caller's path (two qemu-img runs that a commit
    /// need not wait for), then tells the pages. It waits a moment first, so the measure does not take a core from the
    /// end of the job that made the change, and a burst of changes (an update of several qubes) is measured once each.
    /// </summary>
    private void RefreshReclaimableLater(string name) =>
        // One pending measure per qube covers every change made before it reads the current revision.
        _measures.AddOrUpdate(name, n => Task.Run(() => MeasureSoonAsync(n)),
            (n, pending) => pending.IsCompleted ? Task.Run(() => MeasureSoonAsync(n)) : pending);

    private async Task MeasureSoonAsync(string name)
    {
        await Task.Delay(MeasureDelay);
        try
        {
            // Again if a change came while measuring: its own request found this measure pending and was dropped.
            for (int? measured = null; ;)
            {
                string path;
                await using (var db = await contexts.CreateDbContextAsync())
                {
                    var root = await RootOfAsync(db, name, CancellationToken.None);
                    if (root.CurrentRevision == measured) break;
                    measured = root.CurrentRevision;
                    path = root.Revisions.Single(r => r.Number == root.CurrentRevision).Path;
                }
                _reclaimable[name] = await MeasureCurrentAsync(path, Pool);
                estate.NotifyChanged();
            }
        }
        catch (Exception e)
        {
            log.LogInformation("Could not measure the root of {Qube} after its change: {Error}", name, e.Message);
        }
    }

    /// <summary>Measures the current revision chain of every save_on_stop root (the disk usage timer calls this).</summary>
    public async Task MeasureReclaimableAsync(CancellationToken ct = default)
    {
        List<(string Name, string Path)> current;
        await using (var db = await contexts.CreateDbContextAsync(ct))
            current = (await db.Volumes.Where(v => v.CurrentRevision != null)
                .Select(v => new { Name = db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).First(), Path = v.Revisions.Where(r => r.Number == v.CurrentRevision).Select(r => r.Path).First() })
                .ToListAsync(ct)).Select(x => (x.Name, x.Path)).ToList();
        foreach (var (name, path) in current)
        {
            if (!File.Exists(path)) continue;
            try { _reclaimable[name] = await MeasureCurrentAsync(path, Pool, ct); }
            catch (Exception e) when (e is ProcessFailedException or UnsafeImageException) { log.LogWarning("Cannot measure the root of {Qube}: {Error}", name, e.Message); }
        }
    }
    private readonly ConcurrentDictionary<(int Volume, int Revision), int> _pins = new();

    /// <summary>
    /// Keeps a revision from being merged away or deleted while something outside a running qube reads it (a copy
    /// into a new standalone or template); dispose to let go.
    /// </summary>
    public IDisposable Pin(int volumeId, int revision)
    {
        _pins.AddOrUpdate((volumeId, revision), 1, (_, n) => n + 1);
        return new Unpin(this, (volumeId, revision));
    }

    private sealed class Unpin(RootVolumes owner, (int, int) key) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            owner._pins.AddOrUpdate(key, 0, (_, n) => n - 1);
            if (owner._pins.TryGetValue(key, out var left) && left <= 0) owner._pins.TryRemove(key, out _);
        }
    }

    /// <summary>The committed revision a copy of <paramref name="name"/>'s root starts from: its current one, pinned.</summary>
    public async Task<(RootRevision Revision, long VirtualSizeBytes, IDisposable Pin)> PinCurrentAsync(string name, CancellationToken ct = default)
    {
        using (await LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootOfAsync(db, name, ct);
            var rev = root.Revisions.Single(r => r.Number == root.CurrentRevision);
            return (rev, root.VirtualSizeBytes, Pin(root.Id, rev.Number));
        }
    }

    /// <summary>The halted qubes start-up recovery found with writes still to commit (taken once, by the commit jobs).</summary>
    public IReadOnlyList<string> TakePendingCommits() => Interlocked.Exchange(ref _pendingCommits, []);

    private async Task<IDisposable> LockAsync(string name, CancellationToken ct)
    {
        var gate = _locks.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        return new Releaser(gate);
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        private int _done;
        public void Dispose() { if (Interlocked.Exchange(ref _done, 1) == 0) gate.Release(); }
    }

    private static bool IsSnapOnStart(Qube q) => q.Class is QubeClass.AppVM or QubeClass.DispVM;

    /// <summary>
    /// Makes the overlays and volatile volume a start needs. <paramref name="onlyMissing"/>: the qube was started
    /// outside the console (the test driver lets that happen), so only what is not there yet is made.
    /// </summary>
    public async Task PrepareStartAsync(string name, Func<string, Task>? note = null, bool onlyMissing = false, CancellationToken ct = default)
    {
        note ??= _ => Task.CompletedTask;
        using var own = await LockAsync(name, ct);
        string? templateName;
        await using (var db0 = await contexts.CreateDbContextAsync(ct))
            templateName = await db0.Qubes.Where(q => q.Name == name).Select(q => q.Template!.Name).FirstOrDefaultAsync(ct);
        using var template = templateName is null ? null : await LockAsync(templateName, ct);

        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.Include(q => q.Volumes).ThenInclude(v => v.Revisions)
            .Include(q => q.Template).ThenInclude(t => t!.Volumes).ThenInclude(v => v.Revisions)
            .AsSplitQuery().FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw new QubeRuleException($"There is no qube named '{Inventory.Shown(name)}'.");
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
                    SetOverlay(v, v.Id, rev.Number);
                    await note($"Root: a dirty overlay on revision {rev.Number}; it is committed as revision {NextNumber(v)} when {name} stops.");
                    break;
                }
                case VolumeKind.Root when IsSnapOnStart(qube):
                {
                    var source = qube.Template?.Volumes.FirstOrDefault(t => t.IsSaveOnStopRoot)
                        ?? throw new StorageException($"{name} has no template root to snapshot; give it a template first.");
                    var rev = source.Revisions.Single(r => r.Number == source.CurrentRevision);
                    making.Add(RootStore.CreateOverlayAsync(rev.Path, path, Pool, ct));
                    SetOverlay(v, source.Id, rev.Number);
                    await note($"Root: a snapshot of {qube.Template!.Name} revision {rev.Number}.");
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
        if (changed) await db.SaveChangesAsync(CancellationToken.None);
        if (changed) estate.NotifyChanged();
        if (changed) usage.RefreshSoon(name);
    }

    private static void SetOverlay(Volume v, int? sourceVolumeId, int? revision)
    {
        v.OverlaySourceVolumeId = sourceVolumeId;
        v.OverlayRevision = revision;
        v.OverlayCreatedUtc = sourceVolumeId is null ? null : DateTime.UtcNow;
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
        using (await LockAsync(name, ct))
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
                    SetOverlay(v, null, null);
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
                await RetainAndReportLockedAsync(db, name, qube.Volumes.First(v => v.IsSaveOnStopRoot), note, ct);
        }
        // The snapshot no longer holds its revision: the template may let it go now.
        if (templateName is not null) await ApplyRetentionAsync(templateName, note, ct);
        if (outcome.CommittedRevision is not null) RefreshReclaimableLater(name);
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
        using (await LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootOfAsync(db, name, ct);
            if (root.OverlaySourceVolumeId == root.Id)
            {
                RootStore.Delete(root.Path!);
                SetOverlay(root, null, null);
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
            SetOverlay(v, null, null);
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
            SetOverlay(v, null, null);
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
            Reason = Shorten(reason), State = RevisionState.Committing,
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
        SetOverlay(v, null, null);
        await db.SaveChangesAsync(CancellationToken.None);
        return new StorageException($"Could not commit the root of {qube.Name}: {e.Message.Trim()} It stays on revision {previous}; the uncommitted writes were set aside as {aside}.", e);
    }

    private static async Task FinishCommitAsync(InventoryDbContext db, Volume v, RootRevision rev, bool measure = true)
    {
        rev.State = RevisionState.Committed;
        if (measure) rev.SizeBytes = await SizeOfAsync(rev.Path);
        v.CurrentRevision = rev.Number;
        SetOverlay(v, null, null);
        await db.SaveChangesAsync(CancellationToken.None);
    }

    private static async Task<long> SizeOfAsync(string path)
    {
        try { return (await QemuImg.InfoAsync(path)).ActualSizeBytes; }
        catch (ProcessFailedException) { return 0; }
    }

    private static string Shorten(string s) => s.Length <= 200 ? s : s[..197] + "...";

    /// <summary>Lets go of the revisions of <paramref name="qube"/>'s root that fell out of revisions_to_keep and nothing uses.</summary>
    public async Task ApplyRetentionAsync(string qube, Func<string, Task>? note = null, CancellationToken ct = default)
    {
        using var _ = await LockAsync(qube, ct);
        await using var db = await contexts.CreateDbContextAsync(ct);
        var root = await db.Volumes.Include(v => v.Revisions)
            .FirstOrDefaultAsync(v => v.Kind == VolumeKind.Root && v.CurrentRevision != null && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == qube), ct);
        if (root is not null) await RetainAndReportLockedAsync(db, qube, root, note ?? (_ => Task.CompletedTask), ct);
    }

    /// <summary>
    /// Retention, and what follows when it let go of files: the qube's usage measured again, and for revisions a
    /// compaction had let go of while they were read, a line in that compaction's log with what their going won.
    /// </summary>
    private async Task RetainAndReportLockedAsync(InventoryDbContext db, string qube, Volume root, Func<string, Task> note, CancellationToken ct)
    {
        var before = root.Revisions.Sum(r => r.SizeBytes);
        var gone = await ApplyRetentionLockedAsync(db, root, note, ct);
        if (gone.Count == 0) return;
        usage.RefreshSoon(qube);
        await released.ReportGoneAsync(qube, gone, before, root.Revisions.Sum(r => r.SizeBytes));
    }

    /// <summary>
    /// Keeps the current revision and the <see cref="Volume.RevisionsToKeep"/> newest others, and every revision a
    /// running qube's overlay was made from. Any other revision goes: deleted when nothing is written on it, or, when
    /// exactly one revision is written on it, merged into that one (a copy of that layer only, not of the whole root).
    /// A merge a running hypervisor's image lock refuses is retried at a later stop. Returns the revisions that went.
    /// </summary>
    private async Task<List<RootRevision>> ApplyRetentionLockedAsync(InventoryDbContext db, Volume root, Func<string, Task> note, CancellationToken ct, int? keep = null)
    {
        var gone = new List<RootRevision>();
        var inUse = (await db.Volumes.Where(o => o.OverlaySourceVolumeId == root.Id && o.OverlayRevision != null)
            .Select(o => o.OverlayRevision!.Value).ToListAsync(ct)).ToHashSet();
        inUse.UnionWith(_pins.Keys.Where(k => k.Volume == root.Id).Select(k => k.Revision));
        var kept = KeptNumbers(root, keep);
        bool progress;
        do
        {
            progress = false;
            var expired = root.Revisions.Where(r => r.State == RevisionState.Committed && !kept.Contains(r.Number) && !inUse.Contains(r.Number)).ToList();
            // Deletions first, newest first: a revision nothing is written on goes without a copy, and may leave its
            // parent with nothing written on it either. Only then is a layer merged (which copies that layer).
            if (expired.OrderByDescending(r => r.Number).FirstOrDefault(r => root.Revisions.All(c => c.BackingNumber != r.Number)) is { } leaf)
            {
                RootStore.Retire(leaf.Path);
                root.Revisions.Remove(leaf);
                db.Revisions.Remove(leaf);
                gone.Add(leaf);
                await db.SaveChangesAsync(CancellationToken.None);
                await note($"Deleted old revision {leaf.Number}.");
                progress = true;
                continue;
            }
            foreach (var r in expired.OrderBy(r => r.Number))
            {
                if (root.Revisions.Where(c => c.BackingNumber == r.Number).ToList() is not [{ State: RevisionState.Committed } child]) continue;
                try
                {
                    await RootStore.MergeIntoBackingAsync(child.Path, r.Path, Pool, ct);
                    FaultPoints.Hit("merge-renamed");
                }
                catch (ProcessFailedException e)
                {
                    log.LogInformation("Revision {Number} stays for now: {Error}", r.Number, e.Message);
                    continue;
                }
                child.BackingNumber = r.BackingNumber;
                child.SizeBytes = await SizeOfAsync(child.Path);
                root.Revisions.Remove(r);
                db.Revisions.Remove(r);
                gone.Add(r);
                await db.SaveChangesAsync(CancellationToken.None);
                await note($"Merged old revision {r.Number} into revision {child.Number}.");
                progress = true;
                break;
            }
        } while (progress);
        return gone;
    }

    /// <summary>
    /// The current revision and the newest <see cref="Volume.RevisionsToKeep"/> others; never one a compaction let go
    /// of (<see cref="RootRevision.Released"/>): it only waits for its readers.
    /// </summary>
    public static HashSet<int> KeptNumbers(Volume root, int? keep = null) =>
        root.Revisions.Where(r => r.State == RevisionState.Committed && r.Number != root.CurrentRevision && !r.Released)
            .OrderByDescending(r => r.Number).Take(keep ?? root.RevisionsToKeep).Select(r => r.Number)
            .Append(root.CurrentRevision ?? 0).ToHashSet();

    /// <summary>
    /// Makes an older revision current again (Qubes' qvm-volume revert). Refused while the qube runs or has
    /// uncommitted changes; the revision reverted from is kept, so the revert itself can be undone.
    /// </summary>
    public async Task<int> RevertAsync(string name, int number, bool qubeIsHalted, CancellationToken ct = default)
    {
        if (!qubeIsHalted) throw new QubeRuleException($"'{name}' is running; shut it down before reverting its root.");
        int previous;
        using (await LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootOfAsync(db, name, ct);
            if (root.OverlaySourceVolumeId is not null)
                throw new QubeRuleException($"'{name}' has changes from its last run that are not committed yet; wait for the commit, then revert.");
            var target = root.Revisions.FirstOrDefault(r => r.Number == number && r.State == RevisionState.Committed)
                ?? throw new QubeRuleException($"'{name}' has no revision {number}; it has {string.Join(", ", root.Revisions.Select(r => r.Number))}.");
            if (number == root.CurrentRevision) throw new QubeRuleException($"Revision {number} is already current.");
            if (target.Released)
                throw new QubeRuleException($"Revision {number} was let go of by a compaction and is deleted once no running qube reads it; it cannot be reverted to.");
            if (!File.Exists(target.Path)) throw new StorageException($"The file of revision {number} ({target.Path}) is missing.");
            previous = root.CurrentRevision!.Value;
            FaultPoints.Hit("checked");
            root.CurrentRevision = number;
            RefreshReclaimableLater(name);
            // The revision reverted from counts as the newest old one, so the default revisions_to_keep=1 keeps it.
            await db.SaveChangesAsync(CancellationToken.None);
        }
        estate.NotifyChanged();
        return previous;
    }

    public async Task SetRevisionsToKeepAsync(string name, int keep, CancellationToken ct = default)
    {
        if (keep is < 0 or > MaxRevisionsToKeep)
            throw new QubeRuleException($"revisions_to_keep is between 0 and {MaxRevisionsToKeep}; {keep} is not.");
        using (await LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootOfAsync(db, name, ct);
            root.RevisionsToKeep = keep;
            await db.SaveChangesAsync(CancellationToken.None);
            await RetainAndReportLockedAsync(db, name, root, _ => Task.CompletedTask, ct);
        }
        estate.NotifyChanged();
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

    private static async Task<Volume> RootOfAsync(InventoryDbContext db, string name, CancellationToken ct) =>
        await db.Volumes.Include(v => v.Revisions)
            .FirstOrDefaultAsync(v => v.Kind == VolumeKind.Root && v.CurrentRevision != null && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == name), ct)
        // A name no qube has is said as such, not as a qube without a root of its own.
        ?? throw (await db.Qubes.AnyAsync(q => q.Name == name, ct)
            ? new QubeRuleException($"'{Inventory.Shown(name)}' has no root of its own with revisions (only templates and standalones do).")
            : new QubeRuleException($"There is no qube named '{Inventory.Shown(name)}'."));

    /// <summary>
    /// Host bytes the current revision's chain takes against what a compacted copy would (qemu-img measure): a
    /// root never shrinks by itself, since data deleted inside the guest stays allocated in the layers.
    /// </summary>
    public static async Task<(long Allocated, long Compacted)> MeasureCurrentAsync(string revisionPath, string pool, CancellationToken ct = default)
    {
        var chain = await ImageChain.ReadAsync(revisionPath, pool, ct);
        return (chain.Sum(l => l.ActualSizeBytes), await QemuImg.MeasureAsync(revisionPath, ct));
    }

    /// <summary>
    /// Compaction: the current revision's chain flattened with only its data clusters (qemu-img convert -p), checked
    /// equal to the chain (qemu-img compare), then renamed over the revision's file in one atomic step. The revision
    /// keeps its number and its data; readers that have the old file open (running qubes' snapshots on a real
    /// hypervisor) keep reading it until they stop. Then old layers nothing needs any more go. Refused while the
    /// qube runs or has uncommitted changes. Returns the revision and the host bytes its revisions took before and after.
    /// </summary>
    public async Task<(int Revision, long Before, long After)> CompactAsync(string name, bool qubeIsHalted, bool dropOldRevisions,
        Action<double>? progress = null, Func<string, Task>? note = null, CancellationToken ct = default, long? jobId = null)
    {
        note ??= _ => Task.CompletedTask;
        if (!qubeIsHalted) throw new QubeRuleException($"'{name}' is running; shut it down before compacting its root.");
        using var _ = await LockAsync(name, ct);
        await using var db = await contexts.CreateDbContextAsync(ct);
        var root = await RootOfAsync(db, name, ct);
        if (root.OverlaySourceVolumeId == root.Id)
            throw new QubeRuleException($"'{name}' has changes from its last run that are not committed yet; wait for the commit, then compact.");
        var rev = root.Revisions.Single(r => r.Number == root.CurrentRevision);
        var before = root.Revisions.Sum(r => r.SizeBytes);
        // Refused before the copy exists: a chain leaving the pool is neither read nor replaced.
        await ImageChain.EnsureSafeAsync(rev.Path, Pool, ct);
        var part = rev.Path + ".compact.part";
        File.Delete(part);
        try
        {
            await note($"Writing revision {rev.Number} flattened and compacted.");
            await Durable.WriteBehindAsync(part, QemuImg.ConvertAsync(rev.Path, part, progress, ct));
            FaultPoints.Hit("converted");
            // The copy goes to disk while it is compared: both only read it, and the swap waits for both. The log line
            // comes after they started: its own commit waits for the disk too, and need not hold them back.
            var synced = Task.Run(() => Durable.SyncFile(part), CancellationToken.None);
            var comparing = QemuImg.CompareAsync(rev.Path, part, ct);
            (bool Same, string Error) compare;
            try
            {
                await note("Comparing the compacted image with the chain it replaces.");
            }
            finally
            {
                // Never leave the compare or the sync running behind a failure: the catch below deletes their file.
                try { compare = await comparing; }
                finally { await synced; }
            }
            if (!compare.Same)
                throw new StorageException($"The compacted image of {name} does not read the same as revision {rev.Number} ({compare.Error.Trim()}); nothing was changed.");
            FaultPoints.Hit("compared");
        }
        catch
        {
            File.Delete(part);
            throw;
        }
        // The swap: one rename. Before it the old chain is current; after it the compacted file is. The file it
        // replaces is unlinked a moment later, off this job's path.
        FileReaper.RenameOver(part, rev.Path);
        FaultPoints.Hit("swapped");
        rev.BackingNumber = null;
        rev.SizeBytes = await SizeOfAsync(rev.Path);
        if (!rev.Reason.EndsWith("(compacted)", StringComparison.Ordinal)) rev.Reason = Shorten(rev.Reason + " (compacted)");
        await db.SaveChangesAsync(CancellationToken.None);
        FaultPoints.Hit("saved");
        // Old revisions hold the space a compaction is for; unless they are wanted for a revert, they go now.
        await ApplyRetentionLockedAsync(db, root, note, CancellationToken.None, keep: dropOldRevisions ? 0 : null);
        if (dropOldRevisions && ReleasedRevisions.MarkHeld(root, jobId).Count > 0)
        {
            // Read by running qubes, they cannot go now; the flag makes them go at their readers' stop, even after a
            // restart of the console, and keeps them from counting as the revisions kept for a revert.
            await db.SaveChangesAsync(CancellationToken.None);
        }
        var after = root.Revisions.Sum(r => r.SizeBytes);
        // Just written with only its data: nothing left to reclaim (the disk usage timer measures it again).
        _reclaimable[name] = (rev.SizeBytes, rev.SizeBytes);
        usage.RefreshSoon(name);
        estate.NotifyChanged();
        return (rev.Number, before, after);
    }

    /// <summary>A template's revisions, newest first, with who uses each.</summary>
    public async Task<RootHistory?> HistoryAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var root = await db.Volumes.AsNoTracking().Include(v => v.Revisions)
            .FirstOrDefaultAsync(v => v.Kind == VolumeKind.Root && v.CurrentRevision != null && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == name), ct);
        if (root is null) return null;
        var users = await db.Volumes.AsNoTracking().Where(o => o.OverlaySourceVolumeId == root.Id && o.OverlayRevision != null)
            .Select(o => new { Revision = o.OverlayRevision!.Value, Qube = db.Qubes.Where(q => q.Id == o.QubeId).Select(q => q.Name).First() })
            .ToListAsync(ct);
        var kept = KeptNumbers(root);
        return new RootHistory(name, root.CurrentRevision!.Value, root.RevisionsToKeep, root.OverlaySourceVolumeId == root.Id,
            root.Revisions.OrderByDescending(r => r.Number).Select(r => new RevisionView(
                r.Number, r.CreatedUtc, r.Reason, r.SizeBytes, r.State, r.BackingNumber, kept.Contains(r.Number),
                users.Where(u => u.Revision == r.Number && u.Qube != name).Select(u => u.Qube).Order(StringComparer.Ordinal).ToList(),
                r.Released)).ToList());
    }

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
            using var _ = await LockAsync(name, ct);
            await using var db = await contexts.CreateDbContextAsync(ct);
            var qube = await db.Qubes.Include(q => q.Volumes).ThenInclude(v => v.Revisions).FirstAsync(q => q.Name == name, ct);
            foreach (var root in qube.Volumes.Where(v => v.IsSaveOnStopRoot))
            {
                foreach (var rev in root.Revisions.Where(r => r.State == RevisionState.Committing).ToList())
                {
                    if (File.Exists(rev.Path))
                    {
                        await FinishCommitAsync(db, root, rev);
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
                foreach (var rev in root.Revisions) File.Delete(rev.Path + ".compact.part");
                await RepairChainLockedAsync(db, name, root, ct);
            }
            if (!isHalted(name)) continue;
            foreach (var v in qube.Volumes.Where(v => v.Path is not null))
            {
                if (v.Kind == VolumeKind.Root && v.OverlaySourceVolumeId == v.Id)
                {
                    // An overlay whose chain is refused goes to the commit job too, which sets it aside with the reason.
                    if (File.Exists(v.Path!) && (!await IsSafeAsync(v.Path!, ct) || await QemuImg.HasOwnDataAsync(v.Path!, ct))) toCommit.Add(name);
                    else { RootStore.Delete(v.Path!); SetOverlay(v, null, null); }
                }
                else if (v.Kind == VolumeKind.Root && (v.OverlaySourceVolumeId is not null || File.Exists(v.Path!)))
                {
                    RootStore.Delete(v.Path!);
                    SetOverlay(v, null, null);
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
        foreach (var name in names) await ApplyRetentionAsync(name, null, ct);
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
}

/// <param name="Released">A compaction let go of it: it goes when the qubes in <paramref name="UsedBy"/> stop or restart.</param>
public sealed record RevisionView(int Number, DateTime CreatedUtc, string Reason, long SizeBytes, RevisionState State,
    int? BackingNumber, bool Kept, IReadOnlyList<string> UsedBy, bool Released = false);

public sealed record RootHistory(string Qube, int Current, int RevisionsToKeep, bool HasDirtyOverlay, IReadOnlyList<RevisionView> Revisions);
