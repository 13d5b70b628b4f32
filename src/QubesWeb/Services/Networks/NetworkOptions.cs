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
}
