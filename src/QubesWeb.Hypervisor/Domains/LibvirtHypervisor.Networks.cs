// The qubes' networks: one private link (a libvirt network) per network provider, the domains on each, and a running
// qube's interfaces moved live when its netvm changes.
using System.Xml.Linq;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Hypervisor.Domains;

public sealed partial class LibvirtHypervisor
{
    private static IEnumerable<string> NetworksOf(string domainXml) =>
        DomainXml.ParseSafe(domainXml).Root?.Element("devices")?.Elements("interface")
            .Where(i => i.Attribute("type")?.Value == "network")
            .Select(i => i.Element("source")?.Attribute("network")?.Value)
            .OfType<string>().Distinct(StringComparer.Ordinal) ?? [];

    public IReadOnlyList<LinkStatus> ListLinks() => Use(conn =>
    {
        var links = new List<LinkStatus>();
        foreach (var n in conn.ListAllNetworks())
            using (n)
            {
                if (!LinkSpec.IsLinkName(n.Name)) continue;
                var xml = DefinitionOf(n);
                links.Add(new LinkStatus(n.Name, xml.Element("bridge")?.Attribute("name")?.Value, n.IsActive, xml.Elements("ip").Any()));
            }
        return (IReadOnlyList<LinkStatus>)links;
    });

    public bool DefineLinkIfChanged(LinkSpec link) => Use(conn =>
    {
        using (var existing = conn.TryLookupNetworkByName(link.Name))
            if (existing is not null && NetworkXml.Describes(DefinitionOf(existing), link))
                return false;
        // A redefinition of a running link applies at its next start, as libvirt does for networks.
        using var n = conn.DefineNetworkXml(NetworkXml.Link(link));
        return true;
    });

    /// <summary>A network's persistent definition; the test driver knows only the live one (it refuses the flag), which is the same there.</summary>
    private static XElement DefinitionOf(Network n)
    {
        string xml;
        try
        {
            xml = n.GetXmlDesc(NetworkXmlFlags.Inactive);
        }
        catch (LibvirtException e) when (e.Code is ErrorNumber.InvalidArg or ErrorNumber.NoSupport)
        {
            xml = n.GetXmlDesc();
        }
        return DomainXml.ParseSafe(xml).Root!;
    }

    public void RemoveLink(string name)
    {
        // Only the console's own links: a host's network that happens to be asked for is never removed.
        if (!LinkSpec.IsLinkName(name)) throw new ArgumentException($"'{name}' is not one of the console's links.", nameof(name));
        Use(conn =>
        {
            using var n = conn.TryLookupNetworkByName(name);
            if (n is null) return false;
            if (n.IsActive) n.Destroy();
            if (n.IsPersistent) n.Undefine();
            return true;
        });
    }

    public IReadOnlyList<string> DomainsOnNetwork(string network) => Use(conn =>
    {
        var names = new List<string>();
        DomainsUsing(conn, xml => NetworksOf(xml).Contains(network, StringComparer.Ordinal), names);
        return (IReadOnlyList<string>)names;
    });

    /// <summary>
    /// Whether any domain's definition or running XML satisfies <paramref name="uses"/> (a network, a filter it names);
    /// with <paramref name="names"/>, every such domain is listed there rather than stopping at the first.
    /// </summary>
    private static bool DomainsUsing(Connect conn, Func<string, bool> uses, List<string>? names = null)
    {
        var found = false;
        foreach (var d in conn.ListAllDomains())
            using (d)
            {
                if (found && names is null) continue;
                try
                {
                    if (!uses(d.GetXmlDesc()) && !(d.IsPersistent && uses(d.GetXmlDesc(DomainXmlFlags.Inactive)))) continue;
                    found = true;
                    names?.Add(d.Name);
                }
                catch (LibvirtException e) when (e.Code == ErrorNumber.NoDomain)
                {
                    // Undefined while the list was read: it uses nothing.
                }
            }
        return found;
    }

    public InterfaceMove MoveInterfacesLive(DomainSpec spec) => Use(conn =>
    {
        using var d = conn.LookupDomainByName(spec.Name);
        if (!d.IsActive) return InterfaceMove.Unchanged;
        var model = _domainType == "xen" ? null : "virtio";
        var wanted = (spec.Interfaces ?? []).Select(i => NetworkXml.Interface(i, model)).ToList();
        var live = DomainXml.ParseSafe(d.GetXmlDesc()).Root?.Element("devices")?.Elements("interface").ToList() ?? [];
        // Matched by MAC, the identity libvirt gives an interface: one whose MAC stays but whose link changed (a
        // client moved to another netvm) is switched in place, so the guest keeps its NIC and is never on two links or
        // none between; a MAC only libvirt has is unplugged, one only the spec has is plugged in.
        string? MacOf(XElement nic) => nic.Element("mac")?.Attribute("address")?.Value?.ToLowerInvariant();
        // Two live interfaces with one MAC (an edit outside the console) would not be told apart: the first is matched.
        var liveByMac = live.Where(i => MacOf(i) is not null).GroupBy(i => MacOf(i)!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var wantedByMac = wanted.ToDictionary(i => MacOf(i)!, StringComparer.Ordinal);
        var unplug = liveByMac.Where(kv => !wantedByMac.ContainsKey(kv.Key)).Select(kv => kv.Value).ToList();
        var plug = wantedByMac.Where(kv => !liveByMac.ContainsKey(kv.Key)).Select(kv => kv.Value).ToList();
        var change = wantedByMac.Where(kv => liveByMac.TryGetValue(kv.Key, out var now)
            && NetworkXml.InterfaceFingerprint(now) != NetworkXml.InterfaceFingerprint(kv.Value)).Select(kv => kv.Value).ToList();
        if (unplug.Count == 0 && plug.Count == 0 && change.Count == 0) return InterfaceMove.Unchanged;
        void EnsureActive(XElement nic)
        {
            var network = nic.Element("source")!.Attribute("network")!.Value;
            using var net = conn.TryLookupNetworkByName(network)
                ?? throw new HypervisorException($"{spec.Name}'s interface cannot move: libvirt has no network '{network}'.");
            if (!net.IsActive) net.Create();
        }
        try
        {
            // Unplugged with its element as libvirt gave it, as virsh detach-interface does: libvirt finds the device by
            // its MAC (and PCI address), but still parses the element whole, and a network interface without its
            // <source> is an XML error to it.
            foreach (var old in unplug)
                d.DetachDevice(old.ToString(SaveOptions.DisableFormatting), DomainDeviceModifyFlags.Live);
            foreach (var nic in change)
            {
                EnsureActive(nic);
                d.UpdateDevice(nic.ToString(SaveOptions.DisableFormatting), DomainDeviceModifyFlags.Live);
            }
            foreach (var nic in plug)
            {
                EnsureActive(nic);
                d.AttachDevice(nic.ToString(SaveOptions.DisableFormatting), DomainDeviceModifyFlags.Live);
            }
        }
        catch (LibvirtException e) when (e.Code == ErrorNumber.NoSupport)
        {
            return InterfaceMove.NotSupported;
        }
        return InterfaceMove.Moved;
    });
}
