namespace QubesWeb.Services.Networks;

/// <summary>"Networks:Uplink" in any configuration source.</summary>
public sealed class NetworkOptions
{
    /// <summary>libvirt's own NAT network, which a libvirt host (and the test driver) has unless removed.</summary>
    public const string DefaultUplink = "default";

    /// <summary>
    /// The libvirt network a network provider without a netvm (sys-net) is plugged into: the host's way out. It is the
    /// host's, never defined or removed by the console.
    /// </summary>
    public string Uplink { get; set; } = DefaultUplink;

    /// <summary>Said at start-up for a bad <see cref="Uplink"/>, rather than at every definition of sys-net.</summary>
    public const string UplinkRule = "Networks:Uplink must name a libvirt network: 1 to 64 characters, without '/', spaces or control characters.";

    /// <summary>Whether <paramref name="uplink"/> can be a libvirt network name (the rule every interface is checked by).</summary>
    public static bool IsValidUplink(string? uplink) => Hypervisor.Networks.InterfaceSpec.IsNetworkName(uplink);
}
