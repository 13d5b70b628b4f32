using System.Xml;
using System.Xml.Linq;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Hypervisor.Domains;

/// <summary>
/// Builds libvirt domain XML with an XML API, never by concatenation, so no name, label or note can add an element.
/// The qube's class, label and template ride in a namespaced &lt;metadata&gt; element, as virt-manager and
/// cockpit-machines keep their own facts.
/// </summary>
public static class DomainXml
{
    public const string MetadataNamespace = "https://qubesweb.invalid/xmlns/qube/1.0";
    public const string MetadataPrefix = "qube";
    /// <summary>The virtio-serial port name qemu-ga looks for in the guest.</summary>
    public const string AgentChannel = "org.qemu.guest_agent.0";
    private static readonly XNamespace Ns = MetadataNamespace;

    /// <param name="domainType">libvirt's domain type: test, kvm, qemu or xen.</param>
    public static string Build(DomainSpec spec, string domainType)
    {
        var devices = new XElement("devices");
        // With a CD-ROM the boot order is said per device (libvirt forbids mixing it with <os><boot>): the CD first
        // while the qube boots from it, the first disk otherwise. Without one, libvirt's default (the first disk) holds.
        var bootOrder = 1;
        if (spec.Cdrom is { Boot: true }) bootOrder = 2;
        for (var i = 0; i < spec.Disks.Count; i++)
        {
            var disk = spec.Disks[i];
            var d = new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
                new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", disk.Format)),
                new XElement("source", new XAttribute("file", disk.Path)),
                new XElement("target", new XAttribute("dev", disk.Target), new XAttribute("bus", domainType == "xen" ? "xen" : "virtio")));
            if (disk.ReadOnly) d.Add(new XElement("readonly"));
            if (i == 0 && spec.Cdrom is not null) d.Add(new XElement("boot", new XAttribute("order", bootOrder)));
            devices.Add(d);
        }
        if (spec.Cdrom is { } cd)
            devices.Add(new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "cdrom"),
                new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "raw")),
                new XElement("source", new XAttribute("file", cd.Path)),
                // SATA: what both of qemu's x86 machines (i440fx with an AHCI controller libvirt adds, q35) boot from.
                new XElement("target", new XAttribute("dev", "sda"), new XAttribute("bus", domainType == "xen" ? "xen" : "sata")),
                new XElement("readonly"),
                cd.Boot ? new XElement("boot", new XAttribute("order", 1)) : null));
        var qemu = domainType is "kvm" or "qemu";
        // virtio everywhere but Xen, whose guests take netfront (libvirt's default there).
        foreach (var nic in spec.Interfaces ?? [])
            devices.Add(NetworkXml.Interface(nic, domainType == "xen" ? null : "virtio"));
        var oem = spec.OemStrings is { Count: > 0 } strings && domainType != "xen" ? strings : null;
        // The guest agent's channel, which the update jobs reach through virDomainQemuAgentCommand; libvirt picks
        // its host socket. Without it libvirt says the agent "is not configured".
        if (qemu)
        {
            devices.Add(new XElement("channel", new XAttribute("type", "unix"),
                new XElement("target", new XAttribute("type", "virtio"), new XAttribute("name", AgentChannel))));
            // The serial console (ttyS0): a pty libvirt owns, reached through virDomainOpenConsole and never opened
            // on the host by path, so the console can relay it to the qube's page as virsh console does.
            devices.Add(new XElement("serial", new XAttribute("type", "pty"), new XElement("target", new XAttribute("port", 0))));
            devices.Add(new XElement("console", new XAttribute("type", "pty"),
                new XElement("target", new XAttribute("type", "serial"), new XAttribute("port", 0))));
            // The screen: a VNC display on a unix socket libvirt picks (no TCP port is opened on the host), which the
            // console reaches through libvirt only (virDomainScreenshot), and a standard VGA card every guest drives.
            devices.Add(new XElement("graphics", new XAttribute("type", "vnc"), new XElement("listen", new XAttribute("type", "socket"))));
            devices.Add(new XElement("video", new XElement("model", new XAttribute("type", "vga"))));
        }

        var domain = new XElement("domain", new XAttribute("type", domainType),
            new XElement("name", spec.Name),
            new XElement("uuid", spec.Uuid.ToString("D")),
            spec.Description is null ? null : new XElement("description", spec.Description),
            new XElement("metadata", MetadataElement(spec.Metadata)),
            new XElement("memory", new XAttribute("unit", "MiB"), spec.MemoryMiB),
            new XElement("currentMemory", new XAttribute("unit", "MiB"), spec.MemoryMiB),
            new XElement("vcpu", spec.VCpus),
            // The qube's own settings for a guest that reads them from its firmware (see the README's SMBIOS keys).
            oem is null ? null : new XElement("sysinfo", new XAttribute("type", "smbios"),
                new XElement("oemStrings", oem.Select(e => new XElement("entry", e)))),
            new XElement("os", new XElement("type", new XAttribute("arch", "x86_64"), "hvm"),
                oem is null ? null : new XElement("smbios", new XAttribute("mode", "sysinfo"))),
            // ACPI is what a shutdown request (virDomainShutdown, the power button) and a guest's own poweroff use; a
            // qemu domain has none unless asked for, and its guests would halt instead of powering off.
            qemu ? new XElement("features", new XElement("acpi"), new XElement("apic")) : null,
            new XElement("on_poweroff", "destroy"),
            new XElement("on_reboot", "restart"),
            new XElement("on_crash", "destroy"),
            devices);
        return domain.ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>
    /// Whether <paramref name="libvirtXml"/> (a domain's XML as libvirt gives it, with its defaults filled in) says
    /// what <see cref="Build"/> would for <paramref name="spec"/>, in every field the console writes.
    /// </summary>
    public static bool Describes(string libvirtXml, DomainSpec spec, string domainType) =>
        Fingerprint(ParseSafe(libvirtXml).Root!) == Fingerprint(XDocument.Parse(Build(spec, domainType)).Root!);

    private static string Fingerprint(XElement d)
    {
        var qube = d.Element("metadata")?.Element(Ns + "qube");
        var devices = d.Element("devices");
        var parts = new List<string?>
        {
            d.Attribute("type")?.Value, d.Element("name")?.Value, d.Element("uuid")?.Value.ToLowerInvariant(),
            d.Element("description")?.Value ?? "",
            qube?.Element(Ns + "class")?.Value, qube?.Element(Ns + "label")?.Value, qube?.Element(Ns + "template")?.Value ?? "",
            KiB(d.Element("memory")), KiB(d.Element("currentMemory")), d.Element("vcpu")?.Value.Trim(),
            d.Element("features")?.Element("acpi") is null ? "no acpi" : "acpi",
            d.Element("on_poweroff")?.Value, d.Element("on_reboot")?.Value, d.Element("on_crash")?.Value,
        };
        parts.Add("smbios " + d.Element("os")?.Element("smbios")?.Attribute("mode")?.Value);
        foreach (var entry in d.Elements("sysinfo").Elements("oemStrings").Elements("entry"))
            parts.Add("oem " + entry.Value);
        foreach (var disk in devices?.Elements("disk") ?? [])
            parts.Add($"{disk.Attribute("device")?.Value} {disk.Element("source")?.Attribute("file")?.Value} {disk.Element("target")?.Attribute("dev")?.Value} " +
                $"{disk.Element("target")?.Attribute("bus")?.Value} {disk.Element("driver")?.Attribute("type")?.Value} {disk.Element("readonly") is not null} " +
                $"boot {disk.Element("boot")?.Attribute("order")?.Value}");
        // A domain defined before qubes had networks gets its interfaces at the next reconciliation.
        foreach (var nic in devices?.Elements("interface") ?? [])
            parts.Add(NetworkXml.InterfaceFingerprint(nic));
        // A domain defined before qubes had a serial console gets one at the next reconciliation.
        parts.Add($"serial {devices?.Elements("serial").Count(e => e.Attribute("type")?.Value == "pty")}");
        // And a display, once qubes had screens.
        foreach (var graphics in devices?.Elements("graphics") ?? [])
            parts.Add($"graphics {graphics.Attribute("type")?.Value} {string.Join(",", graphics.Elements("listen").Select(l => l.Attribute("type")?.Value))}");
        foreach (var channel in devices?.Elements("channel") ?? [])
            parts.Add($"channel {channel.Attribute("type")?.Value} {channel.Element("target")?.Attribute("type")?.Value} {channel.Element("target")?.Attribute("name")?.Value}");
        return string.Join('\n', parts);
    }

    private static string? KiB(XElement? size)
    {
        if (size is null || !long.TryParse(size.Value.Trim(), out var n)) return size?.Value;
        return (size.Attribute("unit")?.Value ?? "KiB") switch
        {
            "b" or "bytes" => (n / 1024).ToString(),
            "KiB" or "k" or "K" => n.ToString(),
            "MiB" or "M" => (n * 1024).ToString(),
            "GiB" or "G" => (n * 1024 * 1024).ToString(),
            var unit => $"{n} {unit}",
        };
    }

    public static XElement MetadataElement(QubeMetadata m) =>
        new(Ns + "qube", new XAttribute(XNamespace.Xmlns + MetadataPrefix, MetadataNamespace),
            new XElement(Ns + "class", m.Class),
            new XElement(Ns + "label", m.Label),
            m.Template is null ? null : new XElement(Ns + "template", m.Template));

    /// <summary>Reads the qube metadata from a domain's full XML; null when the domain has none.</summary>
    public static QubeMetadata? ParseMetadata(string domainXml)
    {
        var doc = ParseSafe(domainXml);
        var qube = doc.Root?.Element("metadata")?.Element(Ns + "qube");
        if (qube is null) return null;
        return new QubeMetadata(
            qube.Element(Ns + "class")?.Value ?? "",
            qube.Element(Ns + "label")?.Value ?? "",
            qube.Element(Ns + "template")?.Value);
    }

    /// <summary>Parses untrusted XML (from libvirt) without DTDs or external entities.</summary>
    public static XDocument ParseSafe(string xml)
    {
        using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null });
        return XDocument.Load(reader);
    }
}
