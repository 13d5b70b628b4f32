using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Services.Estate;

/// <summary>
/// Each volume's host allocation, measured with qemu-img and stored in the inventory, where every page reads it. The
/// console's own disk work (a start's overlays, a commit, a compaction, old revisions going) asks for a measure of the
/// qubes it touched as it ends, so the pages show the new figures at once; the <see cref="DiskUsageRefresher"/> timer
/// is left with what changes behind the console's back (a guest writing to its private volume).
/// </summary>
public sealed class VolumeUsage(Inventory inventory, EstateMonitor estate, ILogger<VolumeUsage> log)
{
    /// <summary>
    /// A moment between the change and its measure: the measure does not take a core from the end of the job that
    /// made the change, and a burst of changes to one qube (an update's stop, commit and retention) is measured once.
    /// </summary>
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);

    private readonly object _gate = new();
    private readonly Dictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly HashSet<string> _again = new(StringComparer.Ordinal);

    /// <summary>Measures the volumes of <paramref name="qube"/> shortly, off the caller's path, then tells the pages.</summary>
    public void RefreshSoon(string qube)
    {
        lock (_gate)
        {
            // A measure already waiting or running: it runs once more after it, so a change made while it read the
            // files is not missed.
            if (_running.ContainsKey(qube)) { _again.Add(qube); return; }
            _running[qube] = Task.Run(() => RefreshLoopAsync(qube));
        }
    }

    /// <summary>Completes when the measures asked for so far have run (tests and benchmarks wait on it, not on a clock).</summary>
    public Task SettledAsync()
    {
        lock (_gate) return Task.WhenAll(_running.Values);
    }

    private async Task RefreshLoopAsync(string qube)
    {
        await Task.Delay(Delay);
        while (true)
        {
            lock (_gate) _again.Remove(qube);
            try
            {
                if (await MeasureAsync([qube], CancellationToken.None)) estate.NotifyChanged();
            }
            catch (Exception e)
            {
                log.LogInformation("Could not measure the volumes of {Qube} after a change: {Error}", qube, e.Message);
            }
            lock (_gate)
            {
                if (_again.Contains(qube)) continue;
                _running.Remove(qube);
                return;
            }
        }
    }

    /// <summary>
    /// Measures the volumes of the named qubes (every qube when <paramref name="qubes"/> is null) and stores what
    /// changed; true when anything did. A root counts its committed revisions and its runtime overlay.
    /// </summary>
    public async Task<bool> MeasureAsync(IReadOnlyCollection<string>? qubes, CancellationToken ct)
    {
        var list = qubes is null ? await inventory.ListAsync(ct) : new List<Qube>();
        foreach (var name in qubes ?? [])
            if (await inventory.FindAsync(name, ct) is { } q) list.Add(q);
        var changed = false;
        foreach (var qube in list)
            foreach (var v in qube.Volumes.Where(v => v.Path is not null))
            {
                // An overlay exists only while the qube runs.
                var files = v.Revisions.Select(r => r.Path).Prepend(v.Path!).Where(File.Exists).ToList();
                try
                {
                    long usage = 0, size = v.VirtualSizeBytes;
                    foreach (var f in files)
                    {
                        var info = await QemuImg.InfoAsync(f, ct);
                        usage += info.ActualSizeBytes;
                        size = info.VirtualSizeBytes;
                    }
                    if (usage == v.UsageBytes && size == v.VirtualSizeBytes && v.UsageMeasuredUtc is not null) continue;
                    changed = true;
                    await inventory.SetVolumeUsageAsync(v.Id, usage, size, ct);
                }
                catch (ProcessFailedException e)
                {
                    // Also a file let go of between the listing and the measure: the next measure counts without it.
                    log.LogWarning("Cannot measure {Path}: {Error}", v.Path, e.Message);
                }
            }
        return changed;
    }
}
