using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Services.Estate;

/// <summary>Measures every volume's host allocation with qemu-img on a timer (Qube Manager refreshes it every minute).</summary>
public sealed class DiskUsageRefresher(Inventory inventory, EstateMonitor estate, Storage.RootVolumes roots, IOptions<QubesWebOptions> options,
    ILogger<DiskUsageRefresher> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.DiskUsageInterval);
        do
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning("Disk usage refresh failed: {Error}", e.Message);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task RefreshAsync(CancellationToken ct)
    {
        var changed = false;
        foreach (var qube in await inventory.ListAsync(ct))
            foreach (var v in qube.Volumes.Where(v => v.Path is not null))
            {
                // A root counts its committed revisions and its runtime overlay; an overlay exists only while running.
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
                    log.LogWarning("Cannot measure {Path}: {Error}", v.Path, e.Message);
                }
            }
        var before = roots.Reclaimable.ToDictionary(kv => kv.Key, kv => kv.Value);
        await roots.MeasureReclaimableAsync(ct);
        if (changed || roots.Reclaimable.Count != before.Count || roots.Reclaimable.Any(kv => !before.TryGetValue(kv.Key, out var b) || b != kv.Value))
            estate.NotifyChanged();
    }
}
