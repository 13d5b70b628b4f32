using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>A domain libvirt has and the inventory does not: listed, never silently imported or deleted.</summary>
public sealed record UnmanagedDomain(string Name, Guid Uuid, RunState State);

public sealed record ReconcileReport(int Domains, int Qubes, IReadOnlyList<string> Defined, IReadOnlyList<UnmanagedDomain> Unmanaged, IReadOnlyList<string> Failed);

/// <summary>
/// Keeps the inventory and libvirt in step and holds the estate's runtime view (run state always from libvirt).
/// It reconciles at start-up and on each lifecycle event, and is the singleton notifier that pushes changes to every
/// circuit: pages subscribe to <see cref="Changed"/> instead of polling.
/// </summary>
public sealed class EstateMonitor : IDisposable
{
    private readonly IHypervisor _hypervisor;
    private readonly Inventory _inventory;
    private readonly DomainDefinitions _definitions;
    private readonly ILogger<EstateMonitor> _log;
    private readonly ConcurrentDictionary<string, DomainStatus> _domains = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _reconcileGate = new(1, 1);
    private readonly ConcurrentDictionary<Guid, Waiter> _waiters = new();
    private volatile IReadOnlyList<UnmanagedDomain> _unmanaged = [];
    private volatile bool _reconcileQueued;

    // Each lifecycle event stamps its domain; a reconciliation whose listing is older than a domain's last event
    // leaves that domain's state to the event (else a reconcile running across a start would store "halted" after
    // the event stored "running", and nothing would correct it).
    private long _eventSeq;
    private readonly ConcurrentDictionary<string, long> _lastEvent = new(StringComparer.Ordinal);

    public EstateMonitor(IHypervisor hypervisor, Inventory inventory, DomainDefinitions definitions, ILogger<EstateMonitor> log)
    {
        _definitions = definitions;
        _hypervisor = hypervisor;
        _inventory = inventory;
        _log = log;
        _hypervisor.DomainChanged += OnDomainChanged;
        _hypervisor.ConnectionChanged += OnConnectionChanged;
    }

    /// <summary>Raised after anything the pages show may have changed: a domain's state, the inventory, the connection.</summary>
    public event Action? Changed;

    /// <summary>
    /// Raised when only run states changed (a lifecycle event): pages redraw from what they hold, without reading
    /// the inventory again, so an event reaches the screen fast even with a thousand qubes.
    /// </summary>
    public event Action? StatesChanged;

    /// <summary>Raised for each lifecycle event after the runtime view took it in.</summary>
    public event Action<DomainChange>? DomainChanged;

    /// <summary>
    /// Changes whenever a run state this monitor holds may have changed; equal values mean the states read in between
    /// are the same, so a view built from them can be shared until it changes.
    /// </summary>
    public long StatesVersion => Volatile.Read(ref _statesVersion);

    private long _statesVersion;

    public HypervisorConnectionState Connection => _hypervisor.Connection;
    public IReadOnlyList<UnmanagedDomain> Unmanaged => _unmanaged;
    public DateTime? LastReconciledUtc { get; private set; }
    public string? LastReconcileError { get; private set; }

    /// <summary>The run state libvirt last reported for a qube. dom0 always runs; a qube libvirt does not know is Unknown.</summary>
    public RunState StateOf(Qube qube) =>
        qube.Class == QubeClass.AdminVM ? RunState.Running
        : _domains.TryGetValue(qube.Name, out var d) ? d.State
        : RunState.Unknown;

    public RunState StateOf(string name) =>
        name == QubeRules.AdminVmName ? RunState.Running
        : _domains.TryGetValue(name, out var d) ? d.State : RunState.Unknown;

    /// <summary>Inventory and libvirt brought into step: missing domains defined from the inventory, extra ones listed.</summary>
    public async Task<ReconcileReport> ReconcileAsync(CancellationToken ct = default)
    {
        await _reconcileGate.WaitAsync(ct);
        try
        {
            _reconcileQueued = false;
            return await ReconcileLockedAsync(ct);
        }
        finally
        {
            _reconcileGate.Release();
        }
    }

    private async Task<ReconcileReport> ReconcileLockedAsync(CancellationToken ct)
    {
        IReadOnlyList<DomainStatus> domains;
        var listedAt = Interlocked.Read(ref _eventSeq);
        try
        {
            domains = _hypervisor.ListDomains();
        }
        catch (Exception e) when (e is HypervisorUnavailableException or HypervisorException)
        {
            LastReconcileError = e.Message;
            Interlocked.Increment(ref _statesVersion);
            Changed?.Invoke();
            throw;
        }

        // Only names and classes here: the full qube is loaded for the few that need defining.
        List<(string Name, QubeClass Class)> qubes;
        await using (var db = await _inventory.Contexts.CreateDbContextAsync(ct))
            qubes = (await db.Qubes.AsNoTracking().Select(q => new { q.Name, q.Class }).ToListAsync(ct))
                .Select(q => (q.Name, q.Class)).ToList();

        var byName = new Dictionary<string, DomainStatus>(domains.Count, StringComparer.Ordinal);
        foreach (var d in domains) byName[d.Name] = d;
        var known = new HashSet<string>(qubes.Count, StringComparer.Ordinal);
        var defined = new List<string>();
        var failed = new List<string>();
        foreach (var (name, cls) in qubes)
        {
            known.Add(name);
            if (cls == QubeClass.AdminVM || byName.ContainsKey(name)) continue;
            try
            {
                var qube = await _inventory.GetForDomainAsync(name, ct);
                _definitions.Apply(qube);
                defined.Add(name);
                if (_hypervisor.GetDomain(name) is { } now) byName[name] = now;
            }
            catch (Exception e) when (e is HypervisorException or QubeRuleException)
            {
                // Removed since the list was read (a disposable's cleanup, a removal): nothing to define, nothing wrong.
                if (e is QubeRuleException && await _inventory.FindAsync(name, ct) is null) continue;
                failed.Add(name);
                _log.LogError("Could not define {Qube} from the inventory: {Error}", name, e.Message);
            }
        }
        if (defined.Count > 0)
            _log.LogInformation("Defined {Count} qube(s) from the inventory: {Names}", defined.Count, string.Join(", ", defined));

        try
        {
            // After the domains: a link goes only once no domain is on it, and the definitions above may have moved some.
            if (await _definitions.ReconcileLinksAsync(ct) is { Count: > 0 } removedLinks)
                _log.LogInformation("Removed {Count} network link(s) no provider needs: {Names}", removedLinks.Count, string.Join(", ", removedLinks));
            if (await _definitions.ReconcileFirewallsAsync(ct) is { Count: > 0 } removedFirewalls)
                _log.LogInformation("Removed {Count} firewall filter(s) no qube uses: {Names}", removedFirewalls.Count, string.Join(", ", removedFirewalls));
        }
        catch (Exception e) when (e is HypervisorException or QubeRuleException)
        {
            failed.Add("network links");
            _log.LogError("Could not bring the network links and firewalls in line with the inventory: {Error}", e.Message);
        }

        var unmanaged = new List<UnmanagedDomain>();
        foreach (var d in byName.Values)
            if (!known.Contains(d.Name) && d.Name != "Domain-0")
                unmanaged.Add(new UnmanagedDomain(d.Name, d.Uuid, d.State));
        unmanaged.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));

        bool NewerEvent(string name) => _lastEvent.TryGetValue(name, out var seq) && seq > listedAt;
        foreach (var name in _domains.Keys)
            if (!byName.ContainsKey(name) && !NewerEvent(name)) _domains.TryRemove(name, out _);
        foreach (var d in byName.Values)
            if (!NewerEvent(d.Name)) _domains[d.Name] = d;
        _unmanaged = unmanaged;
        LastReconciledUtc = DateTime.UtcNow;
        LastReconcileError = failed.Count > 0 ? $"Could not define: {string.Join(", ", failed)}" : null;
        Interlocked.Increment(ref _statesVersion);
        Changed?.Invoke();
        CheckWaiters();
        return new ReconcileReport(domains.Count, qubes.Count, defined, unmanaged, failed);
    }

    /// <summary>
    /// Brings every qube's libvirt domain in line with the inventory, the truth of how a qube is built: a domain kept
    /// from an older console (without the agent's channel, say), or edited while the console did not run, is defined
    /// again; one that already says what the inventory says is left alone. Run at start-up, after reconciliation
    /// (Qubes defines a domain again at each start; doing it once here keeps that work off every start). A running
    /// qube's new definition takes effect at its next start. Returns the qubes it defined again.
    /// </summary>
    public async Task<IReadOnlyList<string>> AlignDomainsAsync(CancellationToken ct = default)
    {
        List<string> names;
        await using (var db = await _inventory.Contexts.CreateDbContextAsync(ct))
            names = await db.Qubes.Where(q => q.Class != QubeClass.AdminVM).Select(q => q.Name).ToListAsync(ct);
        var aligned = new List<string>();
        foreach (var name in names)
        {
            if (_hypervisor.GetDomain(name) is null) continue;
            try
            {
                if (await _definitions.ApplyAsync(name, ct)) aligned.Add(name);
            }
            catch (Exception e) when (e is HypervisorException or QubeRuleException)
            {
                _log.LogWarning("Could not bring {Qube}'s libvirt domain in line with the inventory: {Error}", name, e.Message);
            }
        }
        if (aligned.Count > 0)
            _log.LogInformation("Defined {Count} domain(s) again from the inventory, where libvirt's differed: {Names}", aligned.Count, string.Join(", ", aligned));
        return aligned;
    }

    /// <summary>Tells the pages something they show changed (e.g. disk usage).</summary>
    public void NotifyChanged() => Changed?.Invoke();

    /// <summary>Tells the monitor the inventory changed (a qube added or removed) so pages and libvirt catch up.</summary>
    public void InventoryChanged() => QueueReconcile();

    private void OnDomainChanged(DomainChange change)
    {
        // A start or stop only changes one row: refresh that domain at once so pages update within the event's
        // latency; definitions and removals change membership, which a full reconcile settles.
        if (change.Kind is DomainChangeKind.Defined or DomainChangeKind.Undefined)
            QueueReconcile();
        else
        {
            _lastEvent[change.Name] = Interlocked.Increment(ref _eventSeq);
            try
            {
                var d = _hypervisor.GetDomain(change.Name);
                if (d is null) _domains.TryRemove(change.Name, out _);
                else _domains[d.Name] = d;
                if (d is not null && _unmanaged.Any(u => u.Name == d.Name))
                    _unmanaged = _unmanaged.Select(u => u.Name == d.Name ? u with { State = d.State } : u).ToList();
            }
            catch (Exception e) when (e is HypervisorUnavailableException or HypervisorException)
            {
                _log.LogWarning("Could not refresh {Domain} after {Event}: {Error}", change.Name, change.Kind, e.Message);
            }
            Interlocked.Increment(ref _statesVersion);
            StatesChanged?.Invoke();
        }
        DomainChanged?.Invoke(change);
        CheckWaiters();
    }

    private void OnConnectionChanged(HypervisorConnectionState state)
    {
        Interlocked.Increment(ref _statesVersion);
        Changed?.Invoke();
        if (state.IsUp) QueueReconcile();
    }

    private void QueueReconcile()
    {
        if (_reconcileQueued) return;
        _reconcileQueued = true;
        _ = Task.Run(async () =>
        {
            try { await ReconcileAsync(); }
            catch (Exception e) { _log.LogWarning("Reconciliation failed: {Error}", e.Message); }
        });
    }

    /// <summary>
    /// Completes when libvirt reports <paramref name="name"/> in a state <paramref name="done"/> accepts, driven by
    /// lifecycle events; the hypervisor is asked once at the start so a state already reached is not missed.
    /// </summary>
    public async Task<RunState> WaitForStateAsync(string name, Func<RunState, bool> done, TimeSpan timeout, CancellationToken ct)
    {
        var waiter = new Waiter(name, done);
        var id = Guid.NewGuid();
        _waiters[id] = waiter;
        try
        {
            var now = _hypervisor.GetDomain(name);
            if (now is not null)
            {
                _domains[name] = now;
                Interlocked.Increment(ref _statesVersion);
                if (done(now.State)) return now.State;
            }
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            try
            {
                return await waiter.Completion.Task.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"'{name}' did not reach the expected state within {timeout.TotalSeconds:0} s.");
            }
        }
        finally
        {
            _waiters.TryRemove(id, out _);
        }
    }

    private void CheckWaiters()
    {
        foreach (var w in _waiters.Values)
            if (_domains.TryGetValue(w.Name, out var d) && w.Done(d.State))
                w.Completion.TrySetResult(d.State);
    }

    private sealed record Waiter(string Name, Func<RunState, bool> Done)
    {
        public TaskCompletionSource<RunState> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Dispose()
    {
        _hypervisor.DomainChanged -= OnDomainChanged;
        _hypervisor.ConnectionChanged -= OnConnectionChanged;
    }
}
