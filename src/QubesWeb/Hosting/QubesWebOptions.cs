namespace QubesWeb.Hosting;

/// <summary>
/// The console's configuration. Set by flag (<c>--Port 8780</c>), environment (<c>QUBESWEB_PORT</c>) or appsettings
/// (<c>"Port": 8780</c>); flags win over the environment, which wins over appsettings.
/// </summary>
public sealed class QubesWebOptions
{
    public const int DefaultPort = 8780;

    /// <summary>The loopback port; 0 picks a free one (tests).</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>Where the inventory, the pool of disk images and the demo's node file live.</summary>
    public string DataDir { get; set; } = DefaultDataDir();

    /// <summary>The libvirt URI. Empty means the embedded demo on libvirt's test driver.</summary>
    public string? LibvirtUri { get; set; }

    /// <summary>libvirt's domain type for the qubes' domains (kvm, qemu, xen); empty picks it from the URI.</summary>
    public string? DomainType { get; set; }

    /// <summary>Whether to make and boot the demo estate; on by default when no libvirt URI is given.</summary>
    public bool? Demo { get; set; }

    /// <summary>How often the volumes' disk usage is measured again.</summary>
    public TimeSpan DiskUsageInterval { get; set; } = TimeSpan.FromMinutes(1);

    public bool IsDemo => Demo ?? string.IsNullOrWhiteSpace(LibvirtUri);
    public string DatabasePath => Path.Combine(DataDir, "qubesweb.db");
    public string PoolDir => Path.Combine(DataDir, "pool");
    public string KeysDir => Path.Combine(DataDir, "keys");
    public string SignInSecretFile => Path.Combine(DataDir, "sign-in-secret");
    public string SignInLinkFile => Path.Combine(DataDir, "sign-in-link");
    public string DemoNodeFile => Path.Combine(DataDir, "libvirt", "demo-node.xml");
    public string EffectiveLibvirtUri => string.IsNullOrWhiteSpace(LibvirtUri) ? "test://" + DemoNodeFile : LibvirtUri!;

    /// <summary>$XDG_DATA_HOME/qubesweb, else ~/.local/share/qubesweb.</summary>
    public static string DefaultDataDir()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(root, "qubesweb");
    }
}
