using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Networks;

namespace QubesWeb.Services.Estate;

/// <summary>
/// The one place a qube's libvirt domain is (re)defined: always from the inventory, the source of truth, and only when
/// libvirt's definition differs from it, since a define for nothing still raises a lifecycle event in every tab. The
/// private links the domain's interfaces are on are defined with it, so no domain names a network libvirt lacks.
/// </summary>
public sealed class DomainDefinitions(Inventory inventory, IHypervisor hypervisor, IOptions<NetworkOptions>? networks = null)
{
    private string Uplink => networks?.Value.Uplink is { Length: > 0 } u ? u : NetworkOptions.DefaultUplink;

    /// <summary>What the qube's domain should be, with the configured uplink.</summary>
    public DomainSpec SpecOf(Qube qube) => DomainSpecs.From(qube, Uplink);

    /// <summary>
    /// Defines <paramref name="qube"/>'s domain as the inventory says (the qube as <see cref="Inventory.GetForDomainAsync"/>
    /// loads it, its firewall's rules with it); whether libvirt's definition changed. Its links and its firewall's
    /// filter come first: an interface cannot start on a network or with a filter libvirt lacks.
    /// </summary>
    public bool Apply(Qube qube)
    {
        var spec = SpecOf(qube);
        foreach (var link in QubeNetwork.LinksOf(qube)) hypervisor.DefineLinkIfChanged(link);
        if (QubeNetwork.FirewallOf(qube) is not null) hypervisor.DefineFirewallIfChanged(FirewallRules.SpecOf(qube));
        return hypervisor.DefineIfChanged(spec);
    }

    /// <summary>Reads the qube from the inventory and defines its domain; whether libvirt's definition changed.</summary>
    public async Task<bool> ApplyAsync(string name, CancellationToken ct = default) =>
        Apply(await inventory.GetForDomainAsync(name, ct));

    /// <summary>
    /// As <see cref="ApplyAsync"/>, for a qube whose domain libvirt already has: one that has none yet gets it from
    /// the next reconciliation, so a change of properties never defines a domain on its own.
    /// </summary>
    public async Task<bool> ReapplyAsync(string name, CancellationToken ct = default) =>
        hypervisor.GetDomain(name) is not null && await ApplyAsync(name, ct);

    /// <summary>
    /// As <see cref="ReapplyAsync"/>, and a running qube's interfaces follow at once (a netvm changed while it runs
    /// moves it to the new link, as Qubes allows). Says what happened to the running guest.
    /// </summary>
    public async Task<InterfaceMove> ReapplyLiveAsync(string name, CancellationToken ct = default)
    {
        if (hypervisor.GetDomain(name) is null) return InterfaceMove.Unchanged;
        var qube = await inventory.GetForDomainAsync(name, ct);
        Apply(qube);
        return hypervisor.GetDomain(name)?.State is RunState.Running or RunState.Paused
            ? hypervisor.MoveInterfacesLive(SpecOf(qube))
            : InterfaceMove.Unchanged;
    }

    /// <summary>
    /// Brings libvirt's filter of the qube's firewall in line with the inventory: applied at once to its running
    /// interface. Null when the qube is on no netvm, so has no interface to filter (the rules wait in the inventory).
    /// </summary>
    public async Task<FirewallApply?> ApplyFirewallAsync(string name, CancellationToken ct = default)
    {
        var qube = await inventory.GetForDomainAsync(name, ct);
        return QubeNetwork.FirewallOf(qube) is null ? null : hypervisor.DefineFirewallIfChanged(FirewallRules.SpecOf(qube));
    }

    /// <summary>
    /// Every network provider's link defined as the inventory says, and the console's links whose provider is gone (or
    /// no longer provides network) removed, once no domain is on them any more: a link a running client still uses
    /// stays until that client is moved or stops. Returns the links it removed.
    /// </summary>
    public async Task<IReadOnlyList<string>> ReconcileLinksAsync(CancellationToken ct = default)
    {
        List<Qube> providers;
        await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
            providers = await db.Qubes.AsNoTracking()
                .Where(q => q.ProvidesNetwork && q.Class != QubeClass.AdminVM && q.Class != QubeClass.TemplateVM).ToListAsync(ct);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var provider in providers)
        {
            var link = QubeNetwork.LinkOf(provider);
            wanted.Add(link.Name);
            hypervisor.DefineLinkIfChanged(link);
        }
        var removed = new List<string>();
        foreach (var link in hypervisor.ListLinks())
        {
            if (wanted.Contains(link.Name) || hypervisor.DomainsOnNetwork(link.Name).Count > 0) continue;
            hypervisor.RemoveLink(link.Name);
            removed.Add(link.Name);
        }
        return removed;
    }

    /// <summary>
    /// Every qube's firewall filter as the inventory says (a change of rules applies it at once; this mends one that
    /// libvirt lost, or that a crash between the inventory's write and libvirt's left behind), and the console's filters of qubes that are gone or no longer on a netvm
    /// removed, once no interface uses them. Returns the filters it removed. Nothing where the driver has no filters.
    /// </summary>
    public async Task<IReadOnlyList<string>> ReconcileFirewallsAsync(CancellationToken ct = default)
    {
        List<Qube> clients;
        await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
            clients = await db.Qubes.AsNoTracking().Include(q => q.NetVm).Include(q => q.FirewallRules)
                .Where(q => q.NetVmId != null && q.Class != QubeClass.AdminVM && q.Class != QubeClass.TemplateVM).ToListAsync(ct);
        var existing = hypervisor.ListFirewalls().ToHashSet(StringComparer.Ordinal);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var qube in clients)
        {
            if (QubeNetwork.FirewallOf(qube) is not { } name) continue;
            wanted.Add(name);
            // One "not supported" says it for every qube (libvirt's test driver): no need to ask a thousand times.
            if (hypervisor.DefineFirewallIfChanged(FirewallRules.SpecOf(qube)) == FirewallApply.NotSupported) return [];
        }
        var removed = new List<string>();
        foreach (var name in existing)
            if (!wanted.Contains(name) && hypervisor.RemoveFirewall(name)) removed.Add(name);
        return removed;
    }
}
