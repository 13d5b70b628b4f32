using System.Collections.Concurrent;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Disposables;

/// <summary>
/// Gone without a trace: a disposable with auto_cleanup that stops, for whatever reason (shutdown, kill, a crash of
/// the guest, a stop made with virsh), is removed by a remove job (its domain, row and files). A job that holds the
/// disposable when it stops (its shutdown) is let finish first: the removal is queued when that job ends. At start-up,
/// every halted disposable is removed, which also finishes a cleanup that a killed console left half done.
/// </summary>
public sealed class DisposableCleanup(EstateMonitor estate, JobEngine jobs, Inventory inventory, IHypervisor hypervisor,
    ILogger<DisposableCleanup> log) : IHostedService
{
    /// <summary>Stopped disposables whose removal is not queued yet.</summary>
    private readonly ConcurrentDictionary<string, byte> _pending = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _sweeping = new(1, 1);
    private int _requested;

    public async Task StartAsync(CancellationToken ct)
    {
        estate.DomainChanged += OnDomainChanged;
        jobs.JobChanged += OnJobChanged;
        try
        {
            foreach (var q in await inventory.ListAsync(ct))
                if (q.AutoCleanup) _pending.TryAdd(q.Name, 0);
        }
        catch (Exception e)
        {
            log.LogWarning("Could not list the disposables to clean up: {Error}", e.Message);
        }
        // Awaited: once the console has started, the removals of disposables left from before are queued.
        await SweepAsync();
    }

    public Task StopAsync(CancellationToken ct)
    {
        estate.DomainChanged -= OnDomainChanged;
        jobs.JobChanged -= OnJobChanged;
        return Task.CompletedTask;
    }

    private void OnDomainChanged(DomainChange change)
    {
        if (change.Kind is not (DomainChangeKind.Stopped or DomainChangeKind.Crashed)) return;
        _pending.TryAdd(change.Name, 0);
        _ = Task.Run(SweepAsync);
    }

    /// <summary>A job ended or moved on: one that held a stopped disposable may have let it go.</summary>
    private void OnJobChanged(long jobId)
    {
        if (!_pending.IsEmpty) _ = Task.Run(SweepAsync);
    }

    private async Task SweepAsync()
    {
        // A sweep asked for while one runs is not lost: the running one goes round again.
        Interlocked.Exchange(ref _requested, 1);
        if (!await _sweeping.WaitAsync(0)) return;
        try
        {
            while (Interlocked.Exchange(ref _requested, 0) == 1)
                foreach (var name in _pending.Keys)
                    if (await TryQueueRemovalAsync(name)) _pending.TryRemove(name, out _);
        }
        catch (Exception e)
        {
            log.LogWarning("Could not clean up stopped disposables: {Error}", e.Message);
        }
        finally
        {
            _sweeping.Release();
        }
        if (Volatile.Read(ref _requested) == 1) _ = Task.Run(SweepAsync);
    }

    /// <summary>Whether <paramref name="name"/> needs nothing more: its removal is queued, or it is no stopped disposable.</summary>
    private async Task<bool> TryQueueRemovalAsync(string name)
    {
        if (!hypervisor.Connection.IsUp) return false;
        var qube = await inventory.FindAsync(name);
        if (qube is null || !qube.AutoCleanup) return true;
        var state = hypervisor.GetDomain(name)?.State;
        if (state is RunState.Running or RunState.Paused) return true; // started again: its next stop brings it back
        if (state is not (null or RunState.Halted or RunState.Crashed)) return false;
        if (await jobs.IsLockedAsync(name)) return false; // retried when the holding job ends
        try
        {
            await jobs.EnqueueAsync(JobKind.Remove, name);
            log.LogInformation("Disposable {Qube} stopped; its removal is queued.", name);
            return true;
        }
        catch (JobConflictException)
        {
            return false;
        }
        catch (RefusalException e)
        {
            log.LogWarning("Disposable {Qube} stopped but cannot be removed: {Reason}", name, e.Message);
            return true;
        }
    }
}
