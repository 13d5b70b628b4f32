using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Services.Networks;

/// <summary>
/// Where a qube sits on the qubes' networks, from the inventory: each network provider has its own private link, its
/// clients are plugged into it on isolated ports, and the provider at the end of a chain (sys-net) into the uplink.
/// </summary>
public static class QubeNetwork
{
    /// <summary>
    /// The private link of <paramref name="provider"/>: <c>qw-NAME</c> (a qube's name is already a valid libvirt name),
    /// and a bridge named after its address, <c>qwbr-A-B</c> for 10.137.A.B: at most 12 characters whatever the
    /// qube's name (Linux allows 15), unique as the address is, and the same for life.
    /// </summary>
    public static LinkSpec LinkOf(Qube provider)
    {
        if (!provider.ProvidesNetwork)
            throw new QubeRuleException($"'{provider.Name}' does not provide network, so it has no link.");
        var parts = provider.IpAddress?.Split('.');
        if (QubeAddresses.IndexOf(provider.IpAddress) is null || parts is null)
            throw new QubeRuleException($"'{provider.Name}' has no address in the inventory, so its link cannot be named.");
        return new LinkSpec(LinkSpec.NamePrefix + provider.Name, $"{LinkSpec.BridgePrefix}{parts[2]}-{parts[3]}");
    }

    /// <summary>
    /// The qube's interfaces, eth0 first. A client of a netvm: one on its netvm's link, on an isolated port, filtered
    /// by its firewall (<see cref="FirewallOf"/>), which holds the anti-spoofing to its own IP and MAC. A provider with no netvm: one on the uplink instead (unfiltered: the uplink's addresses
    /// are the host's DHCP's, not the console's). A provider besides: one on its own link, not isolated (every client
    /// reaches it, as their gateway), with a MAC of its own, and unfiltered, since as a router it passes on packets
    /// whose source is not its address. Templates and qubes with netvm none (and not providing): none at all.
    /// </summary>
    public static IReadOnlyList<InterfaceSpec> InterfacesOf(Qube qube, string uplink)
    {
        if (!HasInterfaces(qube)) return [];
        if (qube.IpAddress is null || qube.MacAddress is null)
            throw new QubeRuleException($"'{qube.Name}' has no address in the inventory, so it cannot be given a network interface.");
        var nics = new List<InterfaceSpec>(2);
        if (qube.NetVm is { } netvm)
            nics.Add(new InterfaceSpec(LinkOf(netvm).Name, qube.MacAddress, isolated: true, filterIp: qube.IpAddress, firewall: FirewallOf(qube)));
        else
            nics.Add(new InterfaceSpec(uplink, qube.MacAddress, isolated: false, filterIp: null));
        if (qube.ProvidesNetwork)
            nics.Add(new InterfaceSpec(LinkOf(qube).Name, QubeAddresses.GatewayMacFor(qube.IpAddress), isolated: false, filterIp: null));
        return nics;
    }

    /// <summary>
    /// The name of the qube's firewall filter when it has one: a client of a netvm, on whose interface the host
    /// enforces it (and its anti-spoofing). A provider's own link and the uplink carry others' traffic: no firewall.
    /// </summary>
    public static string? FirewallOf(Qube qube) =>
        HasInterfaces(qube) && qube.NetVm is not null ? Hypervisor.Networks.FirewallSpec.NameFor(qube.Name) : null;

    /// <summary>Whether the qube is on any network: not dom0, not a template, and with a netvm or providing network.</summary>
    public static bool HasInterfaces(Qube qube) =>
        qube.Class is not (QubeClass.AdminVM or QubeClass.TemplateVM) && (qube.NetVm is not null || qube.ProvidesNetwork);

    /// <summary>The private links <paramref name="qube"/>'s interfaces are on, which must exist before its domain starts.</summary>
    public static IReadOnlyList<LinkSpec> LinksOf(Qube qube)
    {
        if (qube.Class is QubeClass.AdminVM or QubeClass.TemplateVM) return [];
        var links = new List<LinkSpec>(2);
        if (qube.NetVm is { } netvm) links.Add(LinkOf(netvm));
        if (qube.ProvidesNetwork) links.Add(LinkOf(qube));
        return links;
    }
}
