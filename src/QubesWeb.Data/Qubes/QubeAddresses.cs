using System.Globalization;

namespace QubesWeb.Data.Qubes;

/// <summary>
/// The addresses a qube has on its netvm's link, as Qubes gives them: an IPv4 address in 10.137.0.0/16 (core-admin
/// qubes/vm/mix/net.py, 10.137.0.x) and a MAC under Xen's OUI 00:16:3e, which Qubes' vifs use. Both are chosen once,
/// when the qube's row is made, and stored: a qube keeps them for life, so a guest's configuration, a firewall rule
/// naming it, or a client's NAT entry in its netvm never goes stale. dom0 has none (it is on no network).
/// </summary>
public static class QubeAddresses
{
    /// <summary>Hosts per /24 the console hands out: .2 to .254 (.0 and .255 are network and broadcast; .1 is left for a router a user may add).</summary>
    private const int HostsPerBlock = 253;
    private const int FirstHost = 2;

    /// <summary>How many addresses exist: 10.137.0.2 to 10.137.255.254.</summary>
    public const int Capacity = 256 * HostsPerBlock;

    /// <summary>The DNS servers a guest is told, as Qubes' virtual resolvers its netvm redirects to its own (qubes-model.md).</summary>
    public static readonly IReadOnlyList<string> Dns = ["10.139.1.1", "10.139.1.2"];

    /// <summary>
    /// The <paramref name="index"/>-th address (0-based, lowest first). The migration that backfilled existing rows
    /// uses this same order (<c>QubeAddresses</c> migration): change one, change both.
    /// </summary>
    public static string IpAt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Capacity);
        return string.Create(CultureInfo.InvariantCulture, $"10.137.{index / HostsPerBlock}.{FirstHost + index % HostsPerBlock}");
    }

    /// <summary>
    /// The MAC for an address: 00:16:3e:5e then the address's last two octets, so two distinct addresses never share a
    /// MAC, and a MAC read off a bridge names its qube. (Qubes derives its vif MACs the same way, 00:16:3e:5e:6c:xx.)
    /// </summary>
    public static string MacFor(string ip)
    {
        var index = IndexOf(ip) ?? throw new ArgumentException($"'{ip}' is not an address the console hands out.", nameof(ip));
        var a = index / HostsPerBlock;
        var b = FirstHost + index % HostsPerBlock;
        return string.Create(CultureInfo.InvariantCulture, $"00:16:3e:5e:{a:x2}:{b:x2}");
    }

    /// <summary>
    /// The MAC of a network provider's interface on its own link (the one its clients' gateway address answers on):
    /// 00:16:3e:5f and the same two octets, so it never equals any qube's own MAC (00:16:3e:5e:...).
    /// </summary>
    public static string GatewayMacFor(string ip) => "00:16:3e:5f" + MacFor(ip)["00:16:3e:5e".Length..];

    /// <summary>The index of <paramref name="ip"/> in the console's order, or null when it is not one of its addresses.</summary>
    public static int? IndexOf(string? ip)
    {
        if (ip is null) return null;
        var parts = ip.Split('.');
        if (parts.Length != 4 || parts[0] != "10" || parts[1] != "137") return null;
        if (!byte.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var a)
            || !byte.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var b)) return null;
        // Canonical text only ("10.137.0.05" is not one): the column is compared as text.
        if (parts[2] != a.ToString(CultureInfo.InvariantCulture) || parts[3] != b.ToString(CultureInfo.InvariantCulture)) return null;
        if (b < FirstHost || b >= FirstHost + HostsPerBlock) return null;
        return a * HostsPerBlock + (b - FirstHost);
    }

    /// <summary>The lowest address not in <paramref name="taken"/>, or a rule error when every one is in use.</summary>
    public static string LowestFree(IEnumerable<string?> taken)
    {
        var used = new HashSet<int>();
        foreach (var ip in taken)
            if (IndexOf(ip) is { } i) used.Add(i);
        for (var i = 0; i < Capacity; i++)
            if (!used.Contains(i)) return IpAt(i);
        throw new QubeRuleException($"Every one of the {Capacity} qube addresses (10.137.0.2 to 10.137.255.254) is in use; remove a qube first.");
    }
}
