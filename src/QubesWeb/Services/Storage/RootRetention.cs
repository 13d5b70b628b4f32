using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>
/// Qubes' revisions_to_keep: which old revisions of a root stay for a revert, and how the others go (deleted, or
/// merged into the one revision written on them). Runs after every commit, after a snapshot lets go of its template's
/// revision, when the setting changes, after a compaction and at start-up.
/// </summary>
public sealed class RootRetention(IDbContextFactory<InventoryDbContext> contexts, RootLocks locks, EstateMonitor estate,
    VolumeUsage usage, ReleasedRevisions released, ILogger<RootRetention> log, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

    public const int MaxRevisionsToKeep = 10;

    /// <summary>Lets go of the revisions of <paramref name="qube"/>'s root that fell out of revisions_to_keep and nothing uses.</summary>
    public async Task ApplyRetentionAsync(string qube, Func<string, Task>? note = null, CancellationToken ct = default)
    {
        using var _ = await locks.LockAsync(qube, ct);
        await using var db = await contexts.CreateDbContextAsync(ct);
        var root = await db.Volumes.Include(v => v.Revisions)
            .FirstOrDefaultAsync(v => v.Kind == VolumeKind.Root && v.CurrentRevision != null && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == qube), ct);
        if (root is not null) await RetainAndReportLockedAsync(db, qube, root, note ?? (_ => Task.CompletedTask), ct);
    }

    public async Task SetRevisionsToKeepAsync(string name, int keep, CancellationToken ct = default)
    {
        if (keep is < 0 or > MaxRevisionsToKeep)
            throw new QubeRuleException($"revisions_to_keep is between 0 and {MaxRevisionsToKeep}; {keep} is not.");
        using (await locks.LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootRows.RootOfAsync(db, name, ct);
            root.RevisionsToKeep = keep;
            await db.SaveChangesAsync(CancellationToken.None);
            await RetainAndReportLockedAsync(db, name, root, _ => Task.CompletedTask, ct);
        }
        estate.NotifyChanged();
    }

    /// <summary>
    /// Retention, and what follows when it let go of files: the qube's usage measured again, and for revisions a
    /// compaction had let go of while they were read, a line in that compaction's log with what their going won.
    /// </summary>
    internal async Task RetainAndReportLockedAsync(InventoryDbContext db, string qube, Volume root, Func<string, Task> note, CancellationToken ct)
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
    internal async Task<List<RootRevision>> ApplyRetentionLockedAsync(InventoryDbContext db, Volume root, Func<string, Task> note, CancellationToken ct, int? keep = null)
    {
        var gone = new List<RootRevision>();
        var inUse = (await db.Volumes.Where(o => o.OverlaySourceVolumeId == root.Id && o.OverlayRevision != null)
            .Select(o => o.OverlayRevision!.Value).ToListAsync(ct)).ToHashSet();
        inUse.UnionWith(locks.PinnedRevisions(root.Id));
        // Instant copies (standalones, clones) still reading a revision through their bottom layer: the stored pin.
        inUse.UnionWith(await db.Volumes.Where(o => o.DetachSourceVolumeId == root.Id && o.DetachSourceRevision != null)
            .Select(o => o.DetachSourceRevision!.Value).ToListAsync(ct));
        // This root is such a copy: its bottom layer is what the detach reads and replaces, so it is neither merged
        // nor deleted until the detach is done (a merge would rewrite the very file being copied).
        if (root.DetachSourceVolumeId is not null)
            inUse.UnionWith(root.Revisions.Where(r => r.BackingNumber is null).Select(r => r.Number));
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
                // The file is gone, its row not yet: start-up recovery must drop the row.
                FaultPoints.Hit("revision-deleted");
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
                child.SizeBytes = await RootRows.SizeOfAsync(child.Path);
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
}
