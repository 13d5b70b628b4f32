using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>A root's committed revisions as the pages and jobs see them, going back to one, and pinning one for a copy.</summary>
public sealed class RootRevisions(IDbContextFactory<InventoryDbContext> contexts, RootLocks locks, EstateMonitor estate,
    RootMeasures measures)
{
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
        // Instant copies not yet independent read the revision too (their stored pin).
        users.AddRange(await db.Volumes.AsNoTracking().Where(o => o.DetachSourceVolumeId == root.Id && o.DetachSourceRevision != null)
            .Select(o => new { Revision = o.DetachSourceRevision!.Value, Qube = db.Qubes.Where(q => q.Id == o.QubeId).Select(q => q.Name).First() })
            .ToListAsync(ct));
        var kept = RootRetention.KeptNumbers(root);
        return new RootHistory(name, root.CurrentRevision!.Value, root.RevisionsToKeep, root.OverlaySourceVolumeId == root.Id,
            root.Revisions.OrderByDescending(r => r.Number).Select(r => new RevisionView(
                r.Number, r.CreatedUtc, r.Reason, r.SizeBytes, r.State, r.BackingNumber, kept.Contains(r.Number),
                users.Where(u => u.Revision == r.Number && u.Qube != name).Select(u => u.Qube).Distinct().Order(StringComparer.Ordinal).ToList(),
                r.Released)).ToList());
    }

    /// <summary>
    /// Makes an older revision current again (Qubes' qvm-volume revert). Refused while the qube runs or has
    /// uncommitted changes; the revision reverted from is kept, so the revert itself can be undone.
    /// </summary>
    public async Task<int> RevertAsync(string name, int number, bool qubeIsHalted, CancellationToken ct = default)
    {
        if (!qubeIsHalted) throw new QubeRuleException($"'{name}' is running; shut it down before reverting its root.");
        int previous;
        using (await locks.LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootRows.RootOfAsync(db, name, ct);
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
            measures.RefreshLater(name);
            // The revision reverted from counts as the newest old one, so the default revisions_to_keep=1 keeps it.
            await db.SaveChangesAsync(CancellationToken.None);
        }
        estate.NotifyChanged();
        return previous;
    }

    /// <summary>The committed revision a copy of <paramref name="name"/>'s root starts from: its current one, pinned.</summary>
    public async Task<(RootRevision Revision, long VirtualSizeBytes, IDisposable Pin)> PinCurrentAsync(string name, CancellationToken ct = default)
    {
        using (await locks.LockAsync(name, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootRows.RootOfAsync(db, name, ct);
            var rev = root.Revisions.Single(r => r.Number == root.CurrentRevision);
            return (rev, root.VirtualSizeBytes, locks.Pin(root.Id, rev.Number));
        }
    }
}

/// <param name="Released">A compaction let go of it: it goes when the qubes in <paramref name="UsedBy"/> stop or restart.</param>
public sealed record RevisionView(int Number, DateTime CreatedUtc, string Reason, long SizeBytes, RevisionState State,
    int? BackingNumber, bool Kept, IReadOnlyList<string> UsedBy, bool Released = false);

public sealed record RootHistory(string Qube, int Current, int RevisionsToKeep, bool HasDirtyOverlay, IReadOnlyList<RevisionView> Revisions);
