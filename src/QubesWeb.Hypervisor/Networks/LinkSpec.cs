using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace QubesWeb.Hypervisor.Networks;

/// <summary>
/// A network provider's private link: a libvirt network with a bridge and nothing else, no &lt;ip&gt; (dom0 has no
/// address on it, so the host is on no qube's network) and no &lt;forward&gt; (only the provider routes off it).
/// Both names are checked here, whoever makes one: they reach libvirt's XML and the host's interface names.
/// </summary>
public sealed partial record LinkSpec
{
    /// <summary>Every link the console defines is named so; a libvirt network named otherwise is never touched.</summary>
    public const string NamePrefix = "qw-";

    /// <summary>Every link's bridge starts so, which tells the console's bridges from the host's own.</summary>
    public const string BridgePrefix = "qwbr-";

    /// <summary>Linux's limit for an interface name (IFNAMSIZ 16, with its NUL).</summary>
    public const int MaxBridgeLength = 15;

    public LinkSpec(string name, string bridge)
    {
        if (!NamePattern().IsMatch(name))
            throw new ArgumentException($"'{name}' is not a link name: '{NamePrefix}' and a qube's name (a letter, then letters, digits, '_', '.', '-', at most 31 in all).", nameof(name));
        if (bridge.Length > MaxBridgeLength || !BridgePattern().IsMatch(bridge))
            throw new ArgumentException($"'{bridge}' is not a bridge name: '{BridgePrefix}' then lowercase letters, digits and '-', at most {MaxBridgeLength} characters.", nameof(bridge));
        Name = name;
        Bridge = bridge;
    }

    public string Name { get; }
    public string Bridge { get; }

    /// <summary>Whether <paramref name="name"/> is one of the console's link names (a network it may remove).</summary>
    public static bool IsLinkName(string name) => NamePattern().IsMatch(name);

    [GeneratedRegex(@"\Aqw-[a-zA-Z][a-zA-Z0-9_.-]{0,30}\z")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"\Aqwbr-[a-z0-9-]+\z")]
    private static partial Regex BridgePattern();
}

/// <summary>
/// One interface of a domain on a libvirt network. <paramref name="Isolated"/>: a client's port, which reaches the
/// link's other, non-isolated ports (its netvm) and not the other clients' (libvirt &gt;= 6.1, as Qubes' point-to-point
/// vifs). <paramref name="FilterIp"/>: the address the guest must send from, enforced with libvirt's
/// <c>clean-traffic</c> filter together with <paramref name="Mac"/> (no filter when null). <paramref name="Firewall"/>: the
/// qube's own filter (<see cref="FirewallSpec.Name"/>), which includes <c>clean-traffic</c>, in its place.
/// </summary>
public sealed partial record InterfaceSpec
{
    /// <summary>libvirt's stock anti-spoofing filter: no other MAC, no other IP, no ARP lies, no foreign DHCP server.</summary>
    public const string AntiSpoofingFilter = "clean-traffic";

    public InterfaceSpec(string network, string mac, bool isolated, string? filterIp, string? firewall = null)
    {
        if (firewall is not null && (filterIp is null || !FirewallSpec.IsFirewallName(firewall)))
            throw new ArgumentException($"'{firewall}' is not a firewall filter's name, or the interface has no address to filter on.", nameof(firewall));
        if (!IsNetworkName(network))
            throw new ArgumentException($"'{network}' is not a libvirt network name.", nameof(network));
        if (!MacPattern().IsMatch(mac))
            throw new ArgumentException($"'{mac}' is not a MAC address in lowercase xx:xx:xx:xx:xx:xx form.", nameof(mac));
        if (filterIp is not null && !(IPAddress.TryParse(filterIp, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork && ip.ToString() == filterIp))
            throw new ArgumentException($"'{filterIp}' is not an IPv4 address.", nameof(filterIp));
        Network = network;
        Mac = mac;
        Isolated = isolated;
        FilterIp = filterIp;
        Firewall = firewall;
    }

    /// <summary>Whether <paramref name="name"/> can be a libvirt network's name: 1 to 64 characters, without '/', spaces or control characters.</summary>
    public static bool IsNetworkName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 64 && !name.Any(c => char.IsControl(c) || c is '/' || char.IsWhiteSpace(c));

    public string Network { get; }
    public string Mac { get; }
    public bool Isolated { get; }
    public string? FilterIp { get; }
    public string? Firewall { get; }

    [GeneratedRegex(@"\A[0-9a-f]{2}(:[0-9a-f]{2}){5}\z")]
    private static partial Regex MacPattern();
}
