using System.Globalization;
using System.Xml.Linq;

namespace QubesWeb.Hypervisor.Networks;

/// <summary>Network and interface XML for libvirt, built with an XML API (a name can never add an element).</summary>
public static class NetworkXml
{
    /// <summary>
    /// A private link: a bridge only. No &lt;ip&gt;: the host takes no address on it and runs no DHCP or DNS for it.
    /// No &lt;forward&gt;: libvirt routes nothing off it. STP off, no forward delay: one bridge, no loops to find, and
    /// a client's port passes traffic as soon as it is plugged in.
    /// </summary>
    public static string Link(LinkSpec link) =>
        new XElement("network",
            new XElement("name", link.Name),
            new XElement("bridge", new XAttribute("name", link.Bridge), new XAttribute("stp", "off"), new XAttribute("delay", "0")))
            .ToString(SaveOptions.DisableFormatting);

    /// <summary>What of a network's XML (libvirt's, with its defaults) the console manages, to tell whether it must be defined again.</summary>
    public static string LinkFingerprint(XElement network) =>
        $"{network.Element("name")?.Value} bridge {network.Element("bridge")?.Attribute("name")?.Value} " +
        $"ip {network.Elements("ip").Count()} forward {network.Element("forward")?.Attribute("mode")?.Value ?? "none"}";

    /// <summary>Whether libvirt's XML of a network says what <paramref name="link"/> does.</summary>
    public static bool Describes(XElement network, LinkSpec link) =>
        LinkFingerprint(network) == LinkFingerprint(XElement.Parse(Link(link)));

    /// <summary>Where a firewall's rules start in libvirt's order (lower first), after the anti-spoofing it includes.</summary>
    private const int FirstRulePriority = 100;

    /// <summary>The policy's rule: after every rule (at most <see cref="FirewallSpec.MaxRules"/>), within libvirt's -1000..1000.</summary>
    private const int PolicyPriority = 900;

    /// <summary>
    /// A qube's firewall as a libvirt filter: <c>clean-traffic</c> (which reads the interface's IP and MAC parameters,
    /// passed through from its &lt;filterref&gt;), then one rule per firewall rule in order, then a drop of the rest
    /// when the policy is drop. Rules are outgoing ("out": what the qube sends); libvirt tracks their connections, so
    /// the replies come back without a rule of their own. With <paramref name="uuid"/>, a redefinition of the same
    /// filter, whose new rules libvirt applies to every running interface at once.
    /// </summary>
    public static string Firewall(FirewallSpec firewall, Guid? uuid = null) =>
        new XElement("filter", new XAttribute("name", firewall.Name), new XAttribute("chain", "root"),
            uuid is null ? null : new XElement("uuid", uuid.Value.ToString("D")),
            new XElement("filterref", new XAttribute("filter", InterfaceSpec.AntiSpoofingFilter)),
            firewall.Rules.Select((r, i) => Rule(r.Action, FirstRulePriority + i, Match(r))),
            firewall.Policy == FirewallAction.Drop ? Rule(FirewallAction.Drop, PolicyPriority, new XElement("all")) : null)
            .ToString(SaveOptions.DisableFormatting);

    private static XElement Rule(FirewallAction action, int priority, XElement match) =>
        new("rule", new XAttribute("action", action == FirewallAction.Accept ? "accept" : "drop"), new XAttribute("direction", "out"),
            new XAttribute("priority", priority.ToString(CultureInfo.InvariantCulture)), match);

    private static XElement Match(FirewallRuleSpec rule)
    {
        var match = new XElement(rule.Protocol switch
        {
            FirewallProtocol.Tcp => "tcp",
            FirewallProtocol.Udp => "udp",
            FirewallProtocol.Icmp => "icmp",
            _ => "all",
        });
        if (rule.Network is { } network)
        {
            match.Add(new XAttribute("dstipaddr", network.Address));
            if (network.Prefix != 32) match.Add(new XAttribute("dstipmask", network.Prefix.ToString(CultureInfo.InvariantCulture)));
        }
        if (rule.PortStart is { } start)
        {
            match.Add(new XAttribute("dstportstart", start.ToString(CultureInfo.InvariantCulture)));
            if (rule.PortEnd is { } end && end != start) match.Add(new XAttribute("dstportend", end.ToString(CultureInfo.InvariantCulture)));
        }
        if (rule.IcmpType is { } type) match.Add(new XAttribute("type", type.ToString(CultureInfo.InvariantCulture)));
        return match;
    }

    /// <summary>
    /// What of a filter's XML the console writes, as one line (libvirt adds the UUID and keeps the rest as given), to
    /// tell whether a filter must be defined again: a redefinition for nothing would rebuild every interface's rules.
    /// </summary>
    public static string FirewallFingerprint(XElement filter)
    {
        static string Of(XElement e) =>
            $"<{e.Name.LocalName} {string.Join(" ", e.Attributes().Select(a => $"{a.Name.LocalName}={a.Value}").Order(StringComparer.Ordinal))}>" +
            string.Concat(e.Elements().Where(c => c.Name.LocalName != "uuid").Select(Of)) + "</>";
        return Of(filter);
    }

    /// <summary>Whether libvirt's XML of a filter says what <paramref name="firewall"/> does.</summary>
    public static bool Describes(XElement filter, FirewallSpec firewall) =>
        FirewallFingerprint(filter) == FirewallFingerprint(XElement.Parse(Firewall(firewall)));

    /// <param name="model">The NIC model (virtio); null leaves it to libvirt (Xen's netfront).</param>
    public static XElement Interface(InterfaceSpec nic, string? model) =>
        new("interface", new XAttribute("type", "network"),
            new XElement("mac", new XAttribute("address", nic.Mac)),
            new XElement("source", new XAttribute("network", nic.Network)),
            model is null ? null : new XElement("model", new XAttribute("type", model)),
            nic.FilterIp is null ? null : new XElement("filterref", new XAttribute("filter", nic.Firewall ?? InterfaceSpec.AntiSpoofingFilter),
                new XElement("parameter", new XAttribute("name", "IP"), new XAttribute("value", nic.FilterIp)),
                new XElement("parameter", new XAttribute("name", "MAC"), new XAttribute("value", nic.Mac))),
            nic.Isolated ? new XElement("port", new XAttribute("isolated", "yes")) : null);

    /// <summary>One line per interface of a domain's XML, in the fields the console writes (libvirt adds target names, PCI addresses).</summary>
    public static string InterfaceFingerprint(XElement nic)
    {
        var filter = nic.Element("filterref");
        var parameters = (filter?.Elements("parameter") ?? [])
            .Select(p => $"{p.Attribute("name")?.Value}={p.Attribute("value")?.Value}")
            .Order(StringComparer.Ordinal);
        return $"interface {nic.Attribute("type")?.Value} {nic.Element("source")?.Attribute("network")?.Value} " +
               $"{nic.Element("mac")?.Attribute("address")?.Value?.ToLowerInvariant()} model {nic.Element("model")?.Attribute("type")?.Value} " +
               $"isolated {nic.Element("port")?.Attribute("isolated")?.Value ?? "no"} filter {filter?.Attribute("filter")?.Value} {string.Join(",", parameters)}";
    }
}
