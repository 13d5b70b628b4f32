using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Networks;

namespace QubesWeb.Services.Estate;

/// <summary>What the console may put into every guest's first-boot configuration ("FirstBoot" in any configuration source).</summary>
public sealed class FirstBootOptions
{
    /// <summary>An SSH public key for the guests' user <c>user</c> (one line, e.g. "ssh-ed25519 AAAA... me@dom0").</summary>
    public string? SshAuthorizedKey { get; set; }

    /// <summary>A crypt(3) hash of the password of <c>user</c> for the serial console (e.g. from <c>mkpasswd -m sha-512</c>).</summary>
    public string? PasswordHash { get; set; }
}

/// <summary>The three files of a cloud-init NoCloud seed.</summary>
public sealed record SeedFiles(string MetaData, string UserData, string NetworkConfig);

/// <summary>
/// First-boot configuration as Proxmox's cloud-init drive gives it: a small read-only volume labelled <c>cidata</c>
/// (cloud-init's NoCloud source) that every qube of an OS family with cloud-init carries as <c>vdd</c>. It says the
/// qube's hostname, its network (its interfaces matched by MAC, with its address, gateway and DNS), that
/// qemu-guest-agent is installed and runs, Qubes' volume layout (the private volume <c>vdb</c> at <c>/rw</c>, with
/// <c>/home</c> on it, so an AppVM's files outlive its root, which is replaced at each start), and the optional key or
/// password of the user <c>user</c>.
/// The files are JSON (which is YAML), written by a serializer: no name or setting can add a key. The README states
/// the contract.
/// </summary>
public static class FirstBootSeed
{
    public const string FileName = "cidata.iso";
    public const string Target = "vdd";

    /// <summary>The os-distribution values whose official images run cloud-init.</summary>
    public static readonly IReadOnlyList<string> Families = ["debian", "ubuntu", "fedora"];

    /// <summary>A qube's OS family: its own os-distribution feature, else its template's (for a disposable, its template's template's).</summary>
    public static string? Family(Qube qube) =>
        (qube.Feature("os-distribution") ?? qube.Template?.Feature("os-distribution") ?? qube.Template?.Template?.Feature("os-distribution"))?.ToLowerInvariant();

    /// <summary>Where <paramref name="qube"/>'s seed lives (beside its private volume), or null when it gets none.</summary>
    public static string? PathOf(Qube qube)
    {
        if (qube.Class == QubeClass.AdminVM || Family(qube) is not { } family || !Families.Contains(family)) return null;
        var folder = qube.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private)?.Path is { } priv ? Path.GetDirectoryName(priv) : null;
        return folder is null ? null : Path.Combine(folder, FileName);
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static SeedFiles Build(Qube qube, FirstBootOptions options)
    {
        var user = new JsonObject
        {
            ["name"] = "user",
            ["shell"] = "/bin/bash",
            ["sudo"] = "ALL=(ALL) NOPASSWD:ALL",
            ["lock_passwd"] = options.PasswordHash is null,
        };
        if (options.PasswordHash is { } hash) user["hashed_passwd"] = hash;
        if (options.SshAuthorizedKey is { } key) user["ssh_authorized_keys"] = new JsonArray(key);
        var userData = new JsonObject
        {
            ["hostname"] = qube.Name,
            ["preserve_hostname"] = false,
            ["manage_etc_hosts"] = true,
            ["users"] = new JsonArray(user),
            // The private volume: formatted once (never over a filesystem), mounted at /rw, /home bound onto it.
            ["fs_setup"] = new JsonArray(new JsonObject
            {
                ["label"] = "private", ["filesystem"] = "ext4", ["device"] = "/dev/vdb", ["overwrite"] = false,
            }),
            ["mounts"] = new JsonArray(
                new JsonArray("LABEL=private", "/rw", "ext4", "defaults,nofail,x-systemd.device-timeout=10s", "0", "2"),
                new JsonArray("/rw/home", "/home", "none", "bind,nofail,x-systemd.requires-mounts-for=/rw", "0", "0")),
            ["packages"] = new JsonArray("qemu-guest-agent"),
            // Each command an argument list: cloud-init runs a list without a shell.
            ["runcmd"] = new JsonArray(
                new JsonArray("mkdir", "-p", "/rw/home"),
                new JsonArray("cp", "-a", "-n", "/home/.", "/rw/home/"),
                new JsonArray("mount", "/home"),
                new JsonArray("systemctl", "enable", "--now", "qemu-guest-agent")),
        };
        var network = new JsonObject { ["version"] = 2, ["ethernets"] = Ethernets(qube) };
        var userText = "#cloud-config\n" + userData.ToJsonString(Json) + "\n";
        var networkText = network.ToJsonString(Json) + "\n";
        // A new instance-id whenever what the seed says changes: cloud-init re-applies per-instance settings then,
        // also on a template's or standalone's root, which keeps cloud-init's state from boot to boot.
        var id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(qube.Name + "\n" + userText + networkText)))[..16];
        var meta = new JsonObject { ["instance-id"] = $"qubesweb-{qube.Name}-{id}", ["local-hostname"] = qube.Name };
        return new SeedFiles(meta.ToJsonString(Json) + "\n", userText, networkText);
    }

    /// <summary>The prefix of every address the seed gives: one host, on no shared subnet (see <see cref="Ethernets"/>).</summary>
    public const int PrefixLength = 32;

    /// <summary>
    /// cloud-init's network config version 2 for the qube's interfaces, each matched by the MAC its domain gives it
    /// (<see cref="QubeNetwork.InterfacesOf"/>), eth0 first: a client's on its netvm's link, a provider's own link as eth1,
    /// nothing for a qube on no network. A provider with no netvm (sys-net) takes its uplink address from the uplink's
    /// DHCP (the host's, as libvirt's default network), since the console hands out no address there.
    /// <para>
    /// Addresses are /32 with an on-link route to the gateway, as Qubes sets them up (qubes-core-agent's setup-ip), not
    /// a /16 or /24: the console hands addresses out of one 10.137.0.0/16 whatever the netvm, so a qube's neighbours in
    /// that range are mostly on other links, and those on its own link sit on isolated ports. With a shared prefix the
    /// guest would ARP for them on its link and never reach them, instead of sending them to its netvm, which is where
    /// the provider's forwarding and firewall apply. A provider has its one address on both its links: as /32 no two
    /// connected routes claim one subnet. The provider learns its clients (a /32 route each) from the console at run
    /// time, not from its seed, since clients come and go while it runs.
    /// </para>
    /// </summary>
    public static JsonObject Ethernets(Qube qube)
    {
        var ethernets = new JsonObject();
        var nics = QubeNetwork.InterfacesOf(qube, NetworkOptions.DefaultUplink);
        for (var i = 0; i < nics.Count; i++)
        {
            var name = $"eth{i}";
            var nic = new JsonObject
            {
                ["match"] = new JsonObject { ["macaddress"] = nics[i].Mac },
                ["set-name"] = name,
            };
            if (i == 0 && qube.NetVm is { } netvm)
            {
                var gateway = netvm.IpAddress
                    ?? throw new QubeRuleException($"'{netvm.Name}', the netvm of '{qube.Name}', has no address in the inventory, so it cannot be its gateway.");
                nic["dhcp4"] = false;
                nic["addresses"] = new JsonArray($"{qube.IpAddress}/{PrefixLength}");
                nic["routes"] = new JsonArray(
                    // The gateway is not inside a /32: a link-scoped host route makes it reachable, then the default via
                    // it (as qubes-core-agent's setup-ip does). on-link says the same to netplan and networkd; cloud-init's
                    // other renderers (NetworkManager, ENI, sysconfig) drop the key and rely on the host route. cloud-init
                    // 22.4's ENI renderer (ifupdown) cannot render a route without "via" at all: see the README.
                    new JsonObject { ["to"] = $"{gateway}/32", ["scope"] = "link" },
                    new JsonObject { ["to"] = "0.0.0.0/0", ["via"] = gateway, ["on-link"] = true });
                nic["nameservers"] = new JsonObject { ["addresses"] = new JsonArray([.. QubeAddresses.Dns.Select(d => (JsonNode?)d)]) };
            }
            else if (i == 0)
            {
                // The uplink of a provider with no netvm: its address is the uplink's DHCP's, as is its DNS.
                nic["dhcp4"] = true;
            }
            else
            {
                // A provider's own link: the address its clients have as their gateway; no route, no DNS of its own.
                nic["dhcp4"] = false;
                nic["addresses"] = new JsonArray($"{qube.IpAddress}/{PrefixLength}");
            }
            ethernets[name] = nic;
        }
        return ethernets;
    }

    /// <summary>What <see cref="Ethernets"/> tells the guest, in one sentence for a page.</summary>
    public static string NetworkSummary(Qube qube)
    {
        if (!QubeNetwork.HasInterfaces(qube)) return qube.Class == QubeClass.TemplateVM ? "none (a template is on no network)" : "none (no netvm)";
        var own = qube.ProvidesNetwork ? $", and {qube.IpAddress}/{PrefixLength} on its own link (eth1)" : "";
        return qube.NetVm is { } netvm
            ? $"{qube.IpAddress}/{PrefixLength} via {netvm.IpAddress} (eth0, MAC {qube.MacAddress}), DNS {string.Join(", ", QubeAddresses.Dns)}{own}"
            : $"eth0 by DHCP from the uplink{own}";
    }
}

/// <summary>Writes qubes' seeds (genisoimage, volume id <c>cidata</c>) before they start.</summary>
public sealed class FirstBootSeeds(IOptions<FirstBootOptions> options)
{
    private const string GenIsoImage = "genisoimage";

    /// <summary>
    /// Writes <paramref name="qube"/>'s seed if it gets one (made beside, then renamed over the old one); whether it did.
    /// </summary>
    public async Task<bool> WriteAsync(Qube qube, CancellationToken ct)
    {
        if (FirstBootSeed.PathOf(qube) is not { } path) return false;
        var files = FirstBootSeed.Build(qube, options.Value);
        var staging = Directory.CreateTempSubdirectory("qubesweb-seed-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(staging, "meta-data"), files.MetaData, ct);
            await File.WriteAllTextAsync(Path.Combine(staging, "user-data"), files.UserData, ct);
            await File.WriteAllTextAsync(Path.Combine(staging, "network-config"), files.NetworkConfig, ct);
            var tmp = path + ".new";
            try
            {
                await ProcessRunner.RunCheckedAsync(GenIsoImage, ["-quiet", "-output", tmp, "-volid", "cidata", "-joliet", "-rock",
                    Path.Combine(staging, "meta-data"), Path.Combine(staging, "user-data"), Path.Combine(staging, "network-config")], ct);
            }
            catch (System.ComponentModel.Win32Exception)
            {
                throw new IOException($"{qube.Name}'s first-boot configuration needs genisoimage, which is not installed: apt-get install genisoimage.");
            }
            File.Move(tmp, path, overwrite: true);
            return true;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }
}

/// <summary>A qube's first-boot seed as a page shows it.</summary>
/// <param name="WrittenUtc">When a start last wrote it; null: not yet (it is written before each start).</param>
/// <param name="Demo">The demo runs no guest: nothing reads the seed there.</param>
/// <param name="Network">What its network-config says, in a sentence (<see cref="FirstBootSeed.NetworkSummary"/>).</param>
public sealed record FirstBootView(string SeedPath, string Family, SeedFiles Files, string Network, bool HasSshKey, bool HasPassword, DateTime? WrittenUtc, bool Demo);
