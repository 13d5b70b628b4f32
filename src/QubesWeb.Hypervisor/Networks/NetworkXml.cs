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

    /// <param name="model">The NIC model (virtio); null leaves it to libvirt (Xen's netfront).</param>
    public static XElement Interface(InterfaceSpec nic, string? model) =>
        new("interface", new XAttribute("type", "network"),
            new XElement("mac", new XAttribute("address", nic.Mac)),
            new XElement("source", new XAttribute("network", nic.Network)),
            model is null ? null : new XElement("model", new XAttribute("type", model)),
            nic.FilterIp is null ? null : new XElement("filterref", new XAttribute("filter", InterfaceSpec.AntiSpoofingFilter),
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
