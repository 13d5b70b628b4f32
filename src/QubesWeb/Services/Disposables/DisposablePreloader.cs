using System.Collections.Concurrent;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Disposables;

/// <summary>
/// Qubes 4.3's preloaded disposables: a disposable template's <c>preload-dispvm-max</c> feature keeps that many
/// disposables started in the background, paused and hidden, so that a launch hands one out at once (see
/// <see cref="DisposableCommands.LaunchAsync"/>). One is preloaded at a time per template; a preload that failed is
/// retried after a pause; one that a change of its templates made stale (its root or private copy outdated, or other
/// label, netvm or resources) is killed, which removes it, and replaced. A preload cut off by a console restart is a
/// halted disposable, which <see cref="DisposableCleanup"/> removes; this service then preloads again.
/// </summary>
public sealed class DisposablePreloader(EstateMonitor estate, JobEngine jobs, Qubes.QubeQueries queries, IHypervisor hypervisor, DisposableCommands disposables,
    ILogger<DisposablePreloader> log) : IHostedService, IDisposable
{
    /// <summary>How long after a failed preload the next one is tried.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(15);

    /// <summary>A safety net for what no event announces (a retry's time coming).</summary>
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(10);

    /// <summary>The preload job running for each disposable template.</summary>
    private readonly ConcurrentDictionary<string, long> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTime> _retryAfter = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _running = new(1, 1);
    private int _requested;
    private Timer? _timer;

    public Task StartAsync(CancellationToken ct)
    {
        estate.Changed += Request;
        jobs.JobChanged += OnJobChanged;
        _timer = new Timer(_ => Request(), null, TimeSpan.Zero, Tick);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        estate.Changed -= Request;
        jobs.JobChanged -= OnJobChanged;
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _timer?.Dispose();

    private void OnJobChanged(long jobId)
    {
        if (_inFlight.Values.Contains(jobId)) Request();
    }

    /// <summary>
    /// How long a round waits after what asked for it: a launch that took a preloaded disposable finishes resuming it
    /// before the next one is made (qemu-img and a start would compete with the launch the user waits for).
    /// </summary>
    public static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(500);

    private int _scheduled;

    private void Request()
    {
        Interlocked.Exchange(ref _requested, 1);
        if (Interlocked.Exchange(ref _scheduled, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            await Task.Delay(Settle);
            Interlocked.Exchange(ref _scheduled, 0);
            await RunAsync();
        });
    }

    private async Task RunAsync()
    {
        if (!await _running.WaitAsync(0)) return;
        try
        {
            while (Interlocked.Exchange(ref _requested, 0) == 1)
                await ReconcileAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            log.LogWarning("Could not keep disposables preloaded: {Error}", e.Message);
        }
        finally
        {
            _running.Release();
        }
        if (Volatile.Read(ref _requested) == 1) _ = Task.Run(RunAsync);
    }

    /// <summary>Whether a preloaded disposable no longer is what a launch from <paramref name="dvm"/> would make now.</summary>
    public static bool IsStale(Qube preload, Qube dvm, RootStaleness staleness) =>
        staleness == RootStaleness.Outdated
        || preload.Label.Name != dvm.Label.Name || preload.NetVm?.Name != dvm.NetVm?.Name
        || preload.MemoryMiB != dvm.MemoryMiB || preload.VCpus != dvm.VCpus;

    private async Task ReconcileAsync(CancellationToken ct)
    {
        if (!hypervisor.Connection.IsUp) return;
        // Preload jobs that ended: a failure pauses that template's preloading for a while.
        foreach (var (dvm, id) in _inFlight)
        {
            if (await jobs.GetAsync(id, ct) is not { IsFinished: true } job) continue;
            _inFlight.TryRemove(dvm, out _);
            if (job.State != JobState.Succeeded)
            {
                _retryAfter[dvm] = DateTime.UtcNow + RetryAfter;
                log.LogWarning("Preloading a disposable of {Template} failed: {Error}; retried in {Seconds} s.", dvm, job.Error, RetryAfter.TotalSeconds);
            }
        }

        // The shared read every page uses: a round with nothing new to do costs no query.
        var all = await queries.ListAsync(ct);
        var current = Outdated.CurrentRevisions(all);
        var writes = Outdated.SourcePrivateWrites(all);
        foreach (var dvm in all.Where(q => q.IsDisposableTemplate || all.Any(p => p.IsPreloaded && p.Template?.Name == q.Name)))
        {
            var preloads = all.Where(q => q.IsPreloaded && q.Template?.Name == dvm.Name).OrderBy(q => q.CreatedUtc).ToList();
            var fresh = new List<Qube>();
            foreach (var p in preloads)
            {
                var state = estate.StateOf(p);
                if (state is RunState.Halted or RunState.Crashed or RunState.Unknown) continue; // the cleanup removes it
                if (await jobs.IsLockedAsync(p.Name, ct)) { fresh.Add(p); continue; } // being made or handed out
                if (state == RunState.Paused && !IsStale(p, dvm, Outdated.Of(p, state, current, estate.StateOf, writes)))
                    fresh.Add(p);
                else
                    await KillAsync(p.Name, state == RunState.Paused ? "its templates changed" : "it runs without having been handed out", ct);
            }
            var max = dvm.PreloadMax;
            foreach (var extra in fresh.Skip(max).ToList())
                await KillAsync(extra.Name, $"{dvm.Name} keeps {max} preloaded", ct);
            if (fresh.Count >= max || _inFlight.ContainsKey(dvm.Name)) continue;
            if (_retryAfter.TryGetValue(dvm.Name, out var after) && DateTime.UtcNow < after) continue;
            // Its private volume is being written while it runs: nothing is copied from it until it stops.
            if (estate.StateOf(dvm) is not (RunState.Halted or RunState.Unknown)) continue;
            try
            {
                var job = await jobs.EnqueueAsync(JobKind.LaunchDisposable, await disposables.NewNameAsync(ct), new LaunchDisposableRequest(dvm.Name, Preload: true), ct);
                _inFlight[dvm.Name] = job.Id;
            }
            catch (RefusalException e)
            {
                _retryAfter[dvm.Name] = DateTime.UtcNow + RetryAfter;
                log.LogInformation("No disposable of {Template} preloaded now: {Reason}", dvm.Name, e.Message);
            }
        }
    }

    private async Task KillAsync(string name, string why, CancellationToken ct)
    {
        try
        {
            await jobs.EnqueueAsync(JobKind.Kill, name, ct);
            log.LogInformation("Preloaded disposable {Qube} is let go: {Why}.", name, why);
        }
        catch (RefusalException)
        {
            // A job holds it, or it stopped already: the next round sees it again.
        }
    }
}
