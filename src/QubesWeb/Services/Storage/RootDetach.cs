using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>What an instant copy still reads from the qube it was made from; null from <see cref="RootDetach.DependencyAsync"/> once independent.</summary>
/// <param name="BottomRevision">The copy's own revision whose layer is written on the source's revision.</param>
/// <param name="Paused">The user paused the detach; it waits for a resume.</param>
public sealed record RootDependency(string Qube, string Source, int SourceRevision, int BottomRevision, bool Paused);

/// <summary>An instant copy not yet independent, and the pool space its copy will still take.</summary>
public sealed record PendingCopy(string Qube, string Source, int SourceRevision, long StillToTakeBytes);

/// <summary>
/// Makes an instant copy (a standalone or clone whose root was made as an overlay on its source's revision)
/// independent: the bottom layer of its root, the one written on the source's revision, is replaced by the same data
/// flattened, with no backing file, and the stored pin on the source's revision is let go of.
///
/// The bottom layer is a committed revision: its data never change (the qube's own writes go to layers above it), and
/// retention neither merges nor deletes it while the pin stands. So the copy is made beside it with no lock held (the
/// qube may start, run, stop and commit meanwhile), and only the swap, one rename, takes the qube's lock: a start waits
/// for that moment at most. Every point is consistent: before the swap the old layer reads source + own data, after it
/// the new layer reads the same data on its own; a crash leaves at most a part file, which start-up recovery deletes,
/// and running the detach again finishes it (a swap made but not recorded is found from the file: no backing file).
/// </summary>
public sealed class RootDetach(IDbContextFactory<InventoryDbContext> contexts, RootLocks locks, RootRetention retention, EstateMonitor estate,
    VolumeUsage usage, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

    /// <summary>Where the flattened copy of a revision is written before it is renamed over it.</summary>
    public static string PartOf(string revisionPath) => revisionPath + ".detach.part";

    /// <summary>What <paramref name="qube"/>'s root still reads from its source, or null when it is independent (or has no root of its own).</summary>
    public async Task<RootDependency?> DependencyAsync(string qube, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var root = await db.Volumes.AsNoTracking().Include(v => v.Revisions)
            .FirstOrDefaultAsync(v => v.Kind == VolumeKind.Root && v.CurrentRevision != null && v.DetachSourceVolumeId != null
                                      && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == qube), ct);
        if (root is null) return null;
        var source = await db.Volumes.Where(v => v.Id == root.DetachSourceVolumeId)
            .Select(v => db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).FirstOrDefault()).FirstOrDefaultAsync(ct);
        return new RootDependency(qube, source ?? "(removed)", root.DetachSourceRevision ?? 0,
            Bottom(root)?.Number ?? 0, root.DetachPaused);
    }

    /// <summary>The instant copies of <paramref name="source"/> not yet independent, with the revision each reads.</summary>
    public async Task<List<(string Qube, int Revision)>> CopiesOfAsync(string source, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var rows = await db.Volumes.Where(v => v.DetachSourceRevision != null
                                               && db.Volumes.Any(s => s.Id == v.DetachSourceVolumeId && db.Qubes.Any(q => q.Id == s.QubeId && q.Name == source)))
            .Select(v => new { Qube = db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).First(), Revision = v.DetachSourceRevision!.Value })
            .ToListAsync(ct);
        return rows.Select(r => (r.Qube, r.Revision)).ToList();
    }

    /// <summary>The qubes whose roots still depend on another's revision and whose detach is not paused (start-up queues them again).</summary>
    public async Task<List<string>> PendingAsync(CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await db.Volumes.Where(v => v.DetachSourceVolumeId != null && !v.DetachPaused)
            .Select(v => db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).First()).OrderBy(n => n).ToListAsync(ct);
    }

    /// <summary>Records a pause (a cancelled detach is not queued again at start-up) or its end.</summary>
    public async Task SetPausedAsync(string qube, bool paused, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        await db.Volumes.Where(v => v.Kind == VolumeKind.Root && v.DetachSourceVolumeId != null && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == qube))
            .ExecuteUpdateAsync(s => s.SetProperty(v => v.DetachPaused, paused), ct);
        estate.NotifyChanged();
    }

    /// <summary>
    /// The instant copies not yet independent, each with the pool space its copy will still take (what its bottom
    /// layer's copy needs, qemu-img measure of its chain, less what the layer holds now), by name. A new copy is planned
    /// against free space less their sum (<see cref="PoolSpace.FreeAfterCopiesBytes"/>), so two copies made in a row
    /// cannot both count on the same free space.
    /// </summary>
    public async Task<IReadOnlyList<PendingCopy>> PendingCopiesAsync(CancellationToken ct = default)
    {
        List<(string Qube, string Source, int Revision, string Bottom)> copies;
        await using (var db = await contexts.CreateDbContextAsync(ct))
        {
            var roots = await db.Volumes.AsNoTracking().Include(v => v.Revisions).Where(v => v.DetachSourceVolumeId != null)
                .Select(v => new
                {
                    Root = v,
                    Qube = db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).FirstOrDefault(),
                    Source = db.Volumes.Where(s => s.Id == v.DetachSourceVolumeId).Select(s => db.Qubes.Where(q => q.Id == s.QubeId).Select(q => q.Name).FirstOrDefault()).FirstOrDefault(),
                }).ToListAsync(ct);
            copies = roots.Where(r => r.Qube is not null && Bottom(r.Root) is not null)
                .Select(r => (r.Qube!, r.Source ?? "(removed)", r.Root.DetachSourceRevision ?? 0, Bottom(r.Root)!.Path)).OrderBy(c => c.Item1, StringComparer.Ordinal).ToList();
        }
        var pending = new List<PendingCopy>();
        foreach (var (qube, source, revision, bottom) in copies.Where(c => File.Exists(c.Bottom)))
        {
            try
            {
                var layer = (await ImageChain.ReadAsync(bottom, Pool, ct))[0];
                var still = Math.Max(0, await ImageChain.MeasureAsync(bottom, Pool, ct) - layer.ActualSizeBytes);
                pending.Add(new PendingCopy(qube, source, revision, still));
            }
            catch (Exception e) when (e is ProcessFailedException or UnsafeImageException or IOException)
            {
                // Swapped or refused meanwhile: it reserves nothing the plan could count on.
            }
        }
        return pending;
    }

    private static RootRevision? Bottom(Volume root) =>
        root.Revisions.Where(r => r.State == RevisionState.Committed && r.BackingNumber is null).OrderBy(r => r.Number).FirstOrDefault();

    /// <summary>
    /// Copies the source's data into <paramref name="qube"/>'s root until it reads nothing from it. Returns false when
    /// it was independent already. <paramref name="progress"/> gets the copy's percent.
    /// </summary>
    public async Task<bool> DetachAsync(string qube, Action<double>? progress = null, Func<string, Task>? note = null, CancellationToken ct = default)
    {
        note ??= _ => Task.CompletedTask;
        int volumeId, bottomNumber, sourceVolumeId;
        string bottomPath;
        using (await locks.LockAsync(qube, ct))
        {
            await using var db = await contexts.CreateDbContextAsync(ct);
            var root = await RootRows.RootOfAsync(db, qube, ct);
            if (root.DetachSourceVolumeId is null) return false;
            var bottom = Bottom(root) ?? throw new StorageException($"'{qube}' has no revision written on its source; its inventory rows are damaged.");
            (volumeId, bottomNumber, bottomPath, sourceVolumeId) = (root.Id, bottom.Number, bottom.Path, root.DetachSourceVolumeId.Value);
            if (root.DetachPaused)
            {
                root.DetachPaused = false;
                await db.SaveChangesAsync(CancellationToken.None);
            }
        }
        var part = PartOf(bottomPath);
        File.Delete(part);
        // Refused before anything is written: a chain leaving the pool is neither read nor copied. The same read says
        // whether a swap made before a crash, and not recorded, left the layer reading on its own already.
        if ((await ImageChain.ReadAsync(bottomPath, Pool, ct))[0].BackingFile is not null)
        {
            try
            {
                // Durable as it is written (write-behind), so the swap's own fsync has little left to wait for. The log
                // line comes once the copy has started: its commit need not hold the copy back.
                var copying = Durable.WriteBehindAsync(part, QemuImg.ConvertAsync(bottomPath, part, progress, ct));
                try { await note($"Copying the data of revision {bottomNumber} and what it reads from its source into one independent layer."); }
                finally { await copying; }
                FaultPoints.Hit("converted");
                Durable.SyncFile(part);
                FaultPoints.Hit("synced");
            }
            catch
            {
                File.Delete(part);
                throw;
            }
        }
        else
            await note($"Revision {bottomNumber} already has no backing file (a swap from before a restart); recording it.");

        using (await locks.LockAsync(qube, CancellationToken.None))
        {
            await using var db = await contexts.CreateDbContextAsync(CancellationToken.None);
            var root = await db.Volumes.Include(v => v.Revisions).FirstAsync(v => v.Id == volumeId, CancellationToken.None);
            // Retention keeps the bottom layer while the pin stands, so this holds; checked all the same, as the swap
            // replaces a revision's file and must replace the one that was copied.
            if (Bottom(root) is not { } bottom || bottom.Number != bottomNumber || bottom.Path != bottomPath)
            {
                File.Delete(part);
                throw new StorageException($"The bottom revision of '{qube}' changed during the detach; nothing was replaced. Run the detach again.");
            }
            if (File.Exists(part))
            {
                // One rename: before it the layer reads through the source, after it on its own, the same data.
                FileReaper.RenameOver(part, bottomPath);
                FaultPoints.Hit("swapped");
            }
            bottom.SizeBytes = await RootRows.SizeOfAsync(bottomPath);
            root.DetachSourceVolumeId = null;
            root.DetachSourceRevision = null;
            root.DetachPaused = false;
            await db.SaveChangesAsync(CancellationToken.None);
            FaultPoints.Hit("saved");
        }
        // The pin is gone: the source's retention may now let go of the revision (and a compaction's held ones).
        var source = await SourceNameAsync(sourceVolumeId);
        if (source is not null) await retention.ApplyRetentionAsync(source, null, CancellationToken.None);
        usage.RefreshSoon(qube);
        estate.NotifyChanged();
        return true;
    }

    private async Task<string?> SourceNameAsync(int volumeId)
    {
        await using var db = await contexts.CreateDbContextAsync();
        return await db.Volumes.Where(v => v.Id == volumeId)
            .Select(v => db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).FirstOrDefault()).FirstOrDefaultAsync();
    }
}
