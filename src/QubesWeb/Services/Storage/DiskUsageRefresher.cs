using Microsoft.Extensions.Options;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Storage;

/// <summary>
/// Measures every volume's host allocation with qemu-img on a timer (Qube Manager refreshes it every minute). The
/// console's own jobs refresh what they change as they end (<see cref="VolumeUsage.RefreshSoon"/>); this timer
/// catches what changes behind its back: guests writing to their volumes, files touched by hand.
/// </summary>
public sealed class DiskUsageRefresher(VolumeUsage usage, EstateMonitor estate, RootMeasures measures, IOptions<EstateOptions> options,
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
        var changed = await usage.MeasureAsync(null, ct);
        var before = measures.Reclaimable.ToDictionary(kv => kv.Key, kv => kv.Value);
        await measures.MeasureReclaimableAsync(ct);
        if (changed || measures.Reclaimable.Count != before.Count || measures.Reclaimable.Any(kv => !before.TryGetValue(kv.Key, out var b) || b != kv.Value))
            estate.NotifyChanged();
    }
}
