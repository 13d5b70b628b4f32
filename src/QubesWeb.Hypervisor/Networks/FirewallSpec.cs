using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace QubesWeb.Hypervisor.Networks;

/// <summary>What a firewall rule (or a firewall's default) does with the traffic it matches.</summary>
public enum FirewallAction
{
    Accept,
    Drop,
}

/// <summary>The protocols a rule can name (Qubes' qvm-firewall proto=), or any.</summary>
public enum FirewallProtocol
{
    Any,
    Tcp,
    Udp,
    Icmp,
}

/// <summary>
/// One rule of a qube's firewall, for traffic the qube starts (Qubes' qvm-firewall: action, dsthost, proto, dstports,
/// icmptype). Checked here, whoever makes one, with messages that say what to write instead: every field reaches
/// libvirt's filter XML. A destination is an IPv4 address or CIDR: dom0 resolves no names (it has no network), so a
/// host name could never be enforced.
/// </summary>
public sealed partial record FirewallRuleSpec
{
    public FirewallRuleSpec(FirewallAction action, string? destination = null, FirewallProtocol protocol = FirewallProtocol.Any,
        int? portStart = null, int? portEnd = null, int? icmpType = null)
    {
        if (!Enum.IsDefined(action)) throw new ArgumentException($"'{action}' is not an action: accept or drop.", nameof(action));
        if (!Enum.IsDefined(protocol)) throw new ArgumentException($"'{protocol}' is not a protocol: any, tcp, udp or icmp.", nameof(protocol));
        if (destination is { Length: 0 }) destination = null;
        if (destination is not null)
        {
            var (address, prefix) = ParseDestination(destination);
            destination = prefix == 32 ? address : $"{address}/{prefix}";
        }
        if (portStart is not null || portEnd is not null)
        {
            if (protocol is not (FirewallProtocol.Tcp or FirewallProtocol.Udp))
                throw new ArgumentException("Ports belong to a TCP or UDP rule: choose tcp or udp, or clear the ports.", nameof(portStart));
            var start = portStart ?? portEnd!.Value;
            var end = portEnd ?? start;
            if (start is < 1 or > 65535 || end is < 1 or > 65535)
                throw new ArgumentException("A port is a number from 1 to 65535.", nameof(portStart));
            if (end < start)
                throw new ArgumentException($"The port range {start}-{end} runs backwards: write the lower port first.", nameof(portEnd));
            (portStart, portEnd) = (start, end);
        }
        if (icmpType is not null)
        {
            if (protocol != FirewallProtocol.Icmp)
                throw new ArgumentException("An ICMP type belongs to an ICMP rule: choose icmp, or clear the type.", nameof(icmpType));
            if (icmpType is < 0 or > 255)
                throw new ArgumentException("An ICMP type is a number from 0 to 255 (8 is echo request, ping).", nameof(icmpType));
        }
        Action = action;
        Destination = destination;
        Protocol = protocol;
        PortStart = portStart;
        PortEnd = portEnd;
        IcmpType = icmpType;
    }

    public FirewallAction Action { get; }

    /// <summary>An IPv4 address, or a network as address/prefix with no host bits; null for anywhere.</summary>
    public string? Destination { get; }

    public FirewallProtocol Protocol { get; }
    public int? PortStart { get; }
    public int? PortEnd { get; }
    public int? IcmpType { get; }

    /// <summary>The destination's address and prefix length (32 for one host); null for anywhere.</summary>
    public (string Address, int Prefix)? Network => Destination is null ? null : ParseDestination(Destination);

    /// <summary>"8000-8080", "443", or null.</summary>
    public string? Ports => PortStart is null ? null : PortStart == PortEnd ? PortStart.Value.ToString(CultureInfo.InvariantCulture) : $"{PortStart}-{PortEnd}";

    /// <summary>Parses "80", "8000-8080" or nothing into a port range; an ArgumentException says what to write.</summary>
    public static (int? Start, int? End) ParsePorts(string? text)
    {
        text = text?.Trim();
        if (string.IsNullOrEmpty(text)) return (null, null);
        var m = PortsPattern().Match(text);
        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var start))
            throw new ArgumentException($"'{text}' is not a port: write one port (443) or a range (8000-8080).", nameof(text));
        var end = start;
        if (m.Groups[2].Success && !int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out end))
            throw new ArgumentException($"'{text}' is not a port: write one port (443) or a range (8000-8080).", nameof(text));
        return (start, end);
    }

    private static (string Address, int Prefix) ParseDestination(string text)
    {
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        var prefix = 32;
        if (slash >= 0 && !(int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) && prefix is >= 0 and <= 32))
            throw new ArgumentException($"'{text}' has no valid prefix: write an address (192.168.1.10) or a network (192.168.1.0/24), the prefix from 0 to 32.", "destination");
        // Four decimal parts only: IPAddress.TryParse would also take "10.1" or "0x0a000001" as an address.
        if (!DottedQuad().IsMatch(addressText) || !IPAddress.TryParse(addressText, out var address) || address.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"'{text}' is not an IPv4 address or network: write 192.168.1.10 or 192.168.1.0/24. Host names cannot be used: dom0 resolves no names.", "destination");
        var value = BitConverter.ToUInt32(address.GetAddressBytes().Reverse().ToArray());
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        if ((value & ~mask) != 0)
        {
            var network = new IPAddress(BitConverter.GetBytes(value & mask).Reverse().ToArray());
            throw new ArgumentException($"'{text}' has host bits set: the network is {network}/{prefix} (or write the address alone for one host).", "destination");
        }
        return (address.ToString(), prefix);
    }

    [GeneratedRegex(@"\A([0-9]{1,5})(?:\s*-\s*([0-9]{1,5}))?\z")]
    private static partial Regex PortsPattern();

    [GeneratedRegex(@"\A(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\z")]
    private static partial Regex DottedQuad();
}

/// <summary>
/// A qube's firewall as dom0 enforces it, on the host where the guest cannot reach it (libvirt's nwfilter on the
/// qube's interface): anti-spoofing first (<see cref="InterfaceSpec.AntiSpoofingFilter"/>: its own MAC and IP only),
/// then its rules in order, the first that matches deciding, then <see cref="Policy"/> for traffic no rule matched.
/// Rules govern what the qube sends (and the replies to it), as Qubes' firewall does; it filters nothing sent to it.
/// </summary>
public sealed partial record FirewallSpec
{
    /// <summary>Every filter the console defines is named so; a filter named otherwise is never touched.</summary>
    public const string NamePrefix = "qw-fw-";

    /// <summary>More rules than this would be a list nobody reads; libvirt gives each a priority from a bounded range.</summary>
    public const int MaxRules = 200;

    public FirewallSpec(string qube, FirewallAction policy, IReadOnlyList<FirewallRuleSpec> rules)
    {
        if (!QubePattern().IsMatch(qube))
            throw new ArgumentException($"'{qube}' is not a qube name: a letter, then letters, digits, '_', '.', '-', at most 31 in all.", nameof(qube));
        if (!Enum.IsDefined(policy)) throw new ArgumentException($"'{policy}' is not a policy: accept or drop.", nameof(policy));
        if (rules.Count > MaxRules) throw new ArgumentException($"A firewall holds at most {MaxRules} rules; this one has {rules.Count}.", nameof(rules));
        Qube = qube;
        Policy = policy;
        Rules = rules;
    }

    public string Qube { get; }
    public FirewallAction Policy { get; }
    public IReadOnlyList<FirewallRuleSpec> Rules { get; }

    /// <summary>The libvirt filter of this qube's interface.</summary>
    public string Name => NameFor(Qube);

    public static string NameFor(string qube) => NamePrefix + qube;

    /// <summary>Whether <paramref name="name"/> is one of the console's firewall filters (a filter it may remove).</summary>
    public static bool IsFirewallName(string name) => name.StartsWith(NamePrefix, StringComparison.Ordinal) && QubePattern().IsMatch(name[NamePrefix.Length..]);

    /// <summary>The qube a firewall filter's name is for.</summary>
    public static string QubeOf(string name) => IsFirewallName(name) ? name[NamePrefix.Length..] : throw new ArgumentException($"'{name}' is not a firewall filter's name.", nameof(name));

    [GeneratedRegex(@"\A[a-zA-Z][a-zA-Z0-9_.-]{0,30}\z")]
    private static partial Regex QubePattern();
}

/// <summary>What applying a firewall did.</summary>
public enum FirewallApply
{
    /// <summary>libvirt already had these rules.</summary>
    Unchanged,

    /// <summary>Defined, or its rules replaced: libvirt applies them at once to every running interface that uses it.</summary>
    Applied,

    /// <summary>The driver has no packet filter (libvirt's test driver): the rules are kept in the inventory only.</summary>
    NotSupported,
}
