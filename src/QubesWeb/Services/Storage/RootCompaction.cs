using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>Wins back what a root holds for data deleted inside the guest: a root never shrinks by itself.</summary>
public sealed class RootCompaction(IDbContextFactory<InventoryDbContext> contexts, RootLocks locks, EstateMonitor estate,
    VolumeUsage usage, RootRetention retention, RootMeasures measures, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

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
        using var _ = await locks.LockAsync(name, ct);
        await using var db = await contexts.CreateDbContextAsync(ct);
        var root = await RootRows.RootOfAsync(db, name, ct);
        if (root.OverlaySourceVolumeId == root.Id)
            throw new QubeRuleException($"'{name}' has changes from its last run that are not committed yet; wait for the commit, then compact.");
        if (root.DetachSourceVolumeId is not null)
            throw new QubeRuleException($"'{name}' still reads part of its root from the qube it was made from; wait until it is independent (its detach finished), then compact.");
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
        rev.SizeBytes = await RootRows.SizeOfAsync(rev.Path);
        if (!rev.Reason.EndsWith("(compacted)", StringComparison.Ordinal)) rev.Reason = RootRows.Shorten(rev.Reason + " (compacted)");
        await db.SaveChangesAsync(CancellationToken.None);
        FaultPoints.Hit("saved");
        // Old revisions hold the space a compaction is for; unless they are wanted for a revert, they go now.
        await retention.ApplyRetentionLockedAsync(db, root, note, CancellationToken.None, keep: dropOldRevisions ? 0 : null);
        if (dropOldRevisions && ReleasedRevisions.MarkHeld(root, jobId).Count > 0)
        {
            // Read by running qubes, they cannot go now; the flag makes them go at their readers' stop, even after a
            // restart of the console, and keeps them from counting as the revisions kept for a revert.
            await db.SaveChangesAsync(CancellationToken.None);
        }
        var after = root.Revisions.Sum(r => r.SizeBytes);
        // Just written with only its data: nothing left to reclaim (the disk usage timer measures it again).
        measures.SetCompacted(name, rev.SizeBytes);
        usage.RefreshSoon(name);
        estate.NotifyChanged();
        return (rev.Number, before, after);
    }
}
