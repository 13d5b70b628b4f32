using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;

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
/// qube's hostname, its network (none until the console gives qubes networks), that qemu-guest-agent is installed and
/// runs, Qubes' volume layout (the private volume <c>vdb</c> at <c>/rw</c>, with <c>/home</c> on it, so an AppVM's
/// files outlive its root, which is replaced at each start), and the optional key or password of the user <c>user</c>.
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
        // No qube has a network interface yet, so none is configured; the netvm is said in the SMBIOS strings.
        var network = new JsonObject { ["version"] = 2, ["ethernets"] = new JsonObject() };
        var userText = "#cloud-config\n" + userData.ToJsonString(Json) + "\n";
        var networkText = network.ToJsonString(Json) + "\n";
        // A new instance-id whenever what the seed says changes: cloud-init re-applies per-instance settings then,
        // also on a template's or standalone's root, which keeps cloud-init's state from boot to boot.
        var id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(qube.Name + "\n" + userText + networkText)))[..16];
        var meta = new JsonObject { ["instance-id"] = $"qubesweb-{qube.Name}-{id}", ["local-hostname"] = qube.Name };
        return new SeedFiles(meta.ToJsonString(Json) + "\n", userText, networkText);
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
public sealed record FirstBootView(string SeedPath, string Family, SeedFiles Files, bool HasSshKey, bool HasPassword, DateTime? WrittenUtc, bool Demo);
