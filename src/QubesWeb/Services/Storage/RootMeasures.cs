using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>
/// What compacting each root would win: its current chain's host bytes against a compacted copy's. Kept in memory
/// (the disk usage timer measures them all again after a restart) and read by the dashboard and the revisions panel.
/// </summary>
public sealed class RootMeasures(IDbContextFactory<InventoryDbContext> contexts, EstateMonitor estate, VolumeUsage usage,
    ILogger<RootMeasures> log, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    /// <summary>Every image chain the console opens stays inside this folder (<see cref="ImageChain"/>).</summary>
    private string Pool => options.Value.PoolDir;

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
    public void RefreshLater(string name) =>
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
                    var root = await RootRows.RootOfAsync(db, name, CancellationToken.None);
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

    /// <summary>A root just compacted: its current revision holds only its data, nothing is left to reclaim.</summary>
    public void SetCompacted(string name, long bytes) => _reclaimable[name] = (bytes, bytes);

    /// <summary>
    /// Host bytes the current revision's chain takes against what a compacted copy would (qemu-img measure): a
    /// root never shrinks by itself, since data deleted inside the guest stays allocated in the layers.
    /// </summary>
    public static async Task<(long Allocated, long Compacted)> MeasureCurrentAsync(string revisionPath, string pool, CancellationToken ct = default)
    {
        var chain = await ImageChain.ReadAsync(revisionPath, pool, ct);
        return (chain.Sum(l => l.ActualSizeBytes), await ImageChain.MeasureAsync(revisionPath, pool, ct));
    }
}
