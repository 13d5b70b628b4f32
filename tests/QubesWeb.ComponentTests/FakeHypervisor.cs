// An in-memory hypervisor for UI component tests only (the one place a double is allowed): domains, their run
// state and lifecycle events, raised off the caller's thread as libvirt's are.
using System.Collections.Concurrent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.ComponentTests;

public sealed class FakeHypervisor : IHypervisor
{
    private readonly ConcurrentDictionary<string, (DomainSpec? Spec, Guid Uuid, RunState State)> _domains = new(StringComparer.Ordinal);

    public HypervisorConnectionState Connection { get; private set; } = new("fake:///", true, null, DateTime.UtcNow);

    public event Action<HypervisorConnectionState>? ConnectionChanged;
    public event Action<DomainChange>? DomainChanged;

    public IReadOnlyList<DomainStatus> ListDomains()
    {
        EnsureUp();
        return _domains.Select(kv => new DomainStatus(kv.Key, kv.Value.Uuid, kv.Value.State)).ToList();
    }

    public DomainStatus? GetDomain(string name)
    {
        EnsureUp();
        return _domains.TryGetValue(name, out var d) ? new DomainStatus(name, d.Uuid, d.State) : null;
    }

    public QubeMetadata? GetMetadata(string name) => Get(name).Spec?.Metadata;

    public string GetXml(string name) => Get(name).Spec is { } spec ? DomainXml.Build(spec, "test") : $"<domain type='test'><name>{name}</name></domain>";

    public bool DefineIfChanged(DomainSpec spec)
    {
        if (_domains.TryGetValue(spec.Name, out var d) && d.Spec == spec) return false;
        Define(spec);
        return true;
    }

    public void Define(DomainSpec spec)
    {
        EnsureUp();
        _domains.AddOrUpdate(spec.Name, _ => (spec, spec.Uuid, RunState.Halted), (_, d) => (spec, d.Uuid, d.State));
        Raise(spec.Name, DomainChangeKind.Defined);
    }

    /// <summary>A domain made outside the console (no metadata), as an unmanaged one would be.</summary>
    public void AddForeign(string name, RunState state) => _domains[name] = (null, Guid.NewGuid(), state);

    public void Undefine(string name)
    {
        if (!_domains.TryRemove(name, out _)) throw new HypervisorException($"Domain not found: no domain with matching name '{name}'");
        Raise(name, DomainChangeKind.Undefined);
    }

    private readonly ConcurrentDictionary<string, LinkSpec> _links = new(StringComparer.Ordinal);

    public IReadOnlyList<LinkStatus> ListLinks() => _links.Values.Select(l => new LinkStatus(l.Name, l.Bridge, false, false)).ToList();

    public bool DefineLinkIfChanged(LinkSpec link)
    {
        EnsureUp();
        if (_links.TryGetValue(link.Name, out var old) && old == link) return false;
        _links[link.Name] = link;
        return true;
    }

    public void RemoveLink(string name) => _links.TryRemove(name, out _);

    public IReadOnlyList<string> DomainsOnNetwork(string network) =>
        _domains.Where(kv => kv.Value.Spec?.Interfaces?.Any(i => i.Network == network) == true).Select(kv => kv.Key).ToList();

    /// <summary>As libvirt's test driver: a running domain's interfaces cannot be moved.</summary>
    public InterfaceMove MoveInterfacesLive(DomainSpec spec) => InterfaceMove.NotSupported;

    private readonly ConcurrentDictionary<string, FirewallSpec> _firewalls = new(StringComparer.Ordinal);

    /// <summary>As a real libvirtd by default (filters applied); set NotSupported to be libvirt's test driver.</summary>
    public bool HasPacketFilter { get; set; } = true;

    /// <summary>The filters defined, by name, as the last definition left them.</summary>
    public IReadOnlyDictionary<string, FirewallSpec> Firewalls => _firewalls;

    public FirewallApply DefineFirewallIfChanged(FirewallSpec firewall)
    {
        EnsureUp();
        if (!HasPacketFilter) return FirewallApply.NotSupported;
        if (_firewalls.TryGetValue(firewall.Name, out var old) && old.Policy == firewall.Policy && old.Rules.SequenceEqual(firewall.Rules)) return FirewallApply.Unchanged;
        _firewalls[firewall.Name] = firewall;
        return FirewallApply.Applied;
    }

    public IReadOnlyList<string> ListFirewalls() => _firewalls.Keys.ToList();

    public bool RemoveFirewall(string name) => _firewalls.TryRemove(name, out _) || true;

    public void Start(string name) => Move(name, RunState.Halted, RunState.Running, DomainChangeKind.Started, "domain is already running");
    public void Shutdown(string name) => Move(name, RunState.Running, RunState.Halted, DomainChangeKind.Stopped, "domain is not running");
    public void Pause(string name) => Move(name, RunState.Running, RunState.Paused, DomainChangeKind.Suspended, "domain is not running");
    public void Resume(string name) => Move(name, RunState.Paused, RunState.Running, DomainChangeKind.Resumed, "domain is not paused");

    public void Kill(string name)
    {
        var d = Get(name);
        if (d.State == RunState.Halted) throw new HypervisorException("Requested operation is not valid: domain is not running");
        _domains[name] = d with { State = RunState.Halted };
        Raise(name, DomainChangeKind.Stopped);
    }

    /// <summary>Changes a domain's state as if something outside the console did, and raises the lifecycle event.</summary>
    public void SetState(string name, RunState state, DomainChangeKind kind)
    {
        _domains[name] = Get(name) with { State = state };
        Raise(name, kind);
    }

    public void SetConnection(bool up, string? error = null)
    {
        Connection = new("fake:///", up, error, DateTime.UtcNow);
        ConnectionChanged?.Invoke(Connection);
    }

    private void Move(string name, RunState from, RunState to, DomainChangeKind kind, string refusal)
    {
        var d = Get(name);
        if (d.State != from) throw new HypervisorException("Requested operation is not valid: " + refusal);
        _domains[name] = d with { State = to };
        Raise(name, kind);
    }

    private (DomainSpec? Spec, Guid Uuid, RunState State) Get(string name)
    {
        EnsureUp();
        return _domains.TryGetValue(name, out var d) ? d : throw new HypervisorException($"Domain not found: no domain with matching name '{name}'");
    }

    private void EnsureUp()
    {
        if (!Connection.IsUp) throw new HypervisorUnavailableException("fake hypervisor is down");
    }

    private void Raise(string name, DomainChangeKind kind)
    {
        var uuid = _domains.TryGetValue(name, out var d) ? d.Uuid : Guid.Empty;
        var change = new DomainChange(name, uuid, kind, DateTime.UtcNow);
        _ = Task.Run(() => DomainChanged?.Invoke(change));
    }
}
