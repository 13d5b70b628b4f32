using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Networks;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Demo;

/// <summary>
/// The embedded demo: an estate made once, on first start, on libvirt's test driver. Its volumes are real sparse
/// qcow2 files made with qemu-img with data written into them by qemu-io, so sizes and usage are real. The
/// inventory is kept: a second start regenerates nothing.
/// </summary>
public sealed class DemoEstate(Inventory inventory, IHypervisor hypervisor, RootLifecycle lifecycle, Estate.EstateMonitor estate,
    ILogger<DemoEstate> log)
{
    public const string SeededFeature = "qubesweb-demo-seeded";
    private const long GiB = 1L << 30, MiB = 1L << 20;

    /// <summary>The node file libvirt's test driver starts from: empty but for one domain the console does not manage.</summary>
    public static void WriteNodeFile(string path)
    {
        XNamespace test = "http://libvirt.org/schemas/domain/test/1.0";
        var node = new XElement("node",
            new XElement("domain", new XAttribute("type", "test"), new XAttribute(XNamespace.Xmlns + "test", test.NamespaceName),
                new XElement("name", "legacy-vm"),
                new XElement("uuid", "6e4b2f0a-1c7d-4a55-9d38-0f2c9a3b7e11"),
                new XElement("description", "A domain made outside QubesWeb: the console lists it as unmanaged and leaves it alone."),
                new XElement("memory", new XAttribute("unit", "MiB"), 512),
                new XElement("vcpu", 1),
                new XElement("os", new XElement("type", "hvm")),
                new XElement(test + "runstate", 5)),
            // The uplink sys-net is plugged into (Networks:Uplink, "default"): libvirt's own NAT network, as the test
            // driver's built-in node and a libvirt host have it. A node file has only what it lists.
            new XElement("network",
                new XElement("name", NetworkOptions.DefaultUplink),
                new XElement("bridge", new XAttribute("name", "virbr0")),
                new XElement("forward", new XAttribute("mode", "nat")),
                new XElement("ip", new XAttribute("address", "192.168.122.1"), new XAttribute("netmask", "255.255.255.0"),
                    new XElement("dhcp", new XElement("range", new XAttribute("start", "192.168.122.2"), new XAttribute("end", "192.168.122.254"))))));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp";
        new XDocument(node).Save(tmp);
        File.Move(tmp, path, overwrite: true);
    }

    private sealed record Plan(string Name, QubeClass Class, string Label, string? Template = null, string? NetVm = null,
        bool ProvidesNetwork = false, bool Autostart = false, int MemoryMiB = 400, string Notes = "",
        IReadOnlyDictionary<string, string>? Features = null, long RootDataMiB = 0, long PrivateDataMiB = 2);

    private static readonly Plan[] Estate =
    [
        new("fedora-42", QubeClass.TemplateVM, "black", RootDataMiB: 24, PrivateDataMiB: 1, Notes: "Default template.",
            Features: new Dictionary<string, string> { ["os-distribution"] = "fedora" }),
        new("debian-13", QubeClass.TemplateVM, "black", RootDataMiB: 16, PrivateDataMiB: 1,
            Features: new Dictionary<string, string> { ["os-distribution"] = "debian" }),
        new("sys-net", QubeClass.AppVM, "red", "fedora-42", ProvidesNetwork: true, Autostart: true, MemoryMiB: 425,
            Notes: "Holds the network cards: treat as untrusted.", Features: Service),
        new("sys-firewall", QubeClass.AppVM, "green", "fedora-42", "sys-net", ProvidesNetwork: true, Autostart: true, Features: Service),
        new("sys-usb", QubeClass.AppVM, "red", "fedora-42", Features: Service),
        new("work", QubeClass.AppVM, "blue", "fedora-42", "sys-firewall", Autostart: true, MemoryMiB: 2000, PrivateDataMiB: 6),
        new("personal", QubeClass.AppVM, "yellow", "fedora-42", "sys-firewall", Autostart: true, MemoryMiB: 2000, PrivateDataMiB: 4),
        new("untrusted", QubeClass.AppVM, "red", "fedora-42", "sys-firewall", MemoryMiB: 1000),
        new("vault", QubeClass.AppVM, "black", "debian-13", Notes: "No network, by design: keys and passwords live here."),
        new("banking", QubeClass.AppVM, "green", "debian-13", "sys-firewall"),
        new("mail", QubeClass.AppVM, "purple", "debian-13", "sys-firewall", Autostart: true, PrivateDataMiB: 8),
        new("social", QubeClass.AppVM, "orange", "fedora-42", "sys-firewall"),
        new("media", QubeClass.AppVM, "gray", "debian-13", "sys-firewall", MemoryMiB: 1500),
        new("research", QubeClass.AppVM, "purple", "fedora-42", "sys-firewall"),
        new("default-dvm", QubeClass.AppVM, "gray", "fedora-42", "sys-firewall",
            Features: new Dictionary<string, string> { ["template_for_dispvms"] = "True", ["internal"] = "1" }),
        new("devbox", QubeClass.StandaloneVM, "orange", NetVm: "sys-firewall", MemoryMiB: 4000, RootDataMiB: 24, PrivateDataMiB: 4,
            Notes: "Standalone for development: its own root, updated on its own.",
            Features: new Dictionary<string, string> { ["os-distribution"] = "fedora" }),
    ];

    private static IReadOnlyDictionary<string, string> Service => new Dictionary<string, string> { ["servicevm"] = "1" };

    /// <summary>Makes the demo estate unless it was made before (or the inventory has qubes of its own).</summary>
    public async Task EnsureSeededAsync(string poolDir, CancellationToken ct)
    {
        var qubes = await inventory.ListAsync(ct);
        var dom0 = qubes.FirstOrDefault(q => q.Class == QubeClass.AdminVM);
        if (dom0?.Feature(SeededFeature) is not null || qubes.Any(q => q.Class != QubeClass.AdminVM))
            return;

        log.LogInformation("Making the demo estate in {Pool}", poolDir);
        var requests = new List<NewQube>();
        foreach (var p in Estate)
        {
            var dir = Path.Combine(poolDir, p.Name);
            PrivateFiles.CreateFolder(dir);
            var volumes = new List<NewVolume>();
            if (p.Class is QubeClass.TemplateVM or QubeClass.StandaloneVM)
            {
                var first = await MakeAsync(Path.Combine(dir, RootFiles.Revision(1)), VolumeKind.Root, 10 * GiB, p.RootDataMiB, 0x51, ct);
                volumes.Add(first with
                {
                    Path = Path.Combine(dir, RootFiles.Dirty),
                    FirstRevision = new NewRevision(first.Path!, "Installed", first.UsageBytes),
                });
            }
            else
                volumes.Add(new NewVolume(VolumeKind.Root, Path.Combine(dir, RootFiles.Snapshot), 10 * GiB));
            volumes.Add(await MakeAsync(Path.Combine(dir, "private.qcow2"), VolumeKind.Private, 2 * GiB, p.PrivateDataMiB, 0x3a, ct));
            // Made fresh at each start, as Qubes does.
            volumes.Add(new NewVolume(VolumeKind.Volatile, Path.Combine(dir, "volatile.qcow2"), 10 * GiB));
            requests.Add(new NewQube(p.Name, p.Class, p.Label, p.Template, p.NetVm, p.ProvidesNetwork, p.MemoryMiB,
                Notes: p.Notes, Autostart: p.Autostart, Features: p.Features, Volumes: volumes));
        }
        // One transaction: a start killed half-way leaves no half estate, and the next start makes it again.
        await inventory.CreateAllAsync(requests, new Dictionary<string, string> { [SeededFeature] = DateTime.UtcNow.ToString("O"), [DisposableFeatures.DefaultDispvm] = "default-dvm" }, ct);
    }

    private static async Task<NewVolume> MakeAsync(string path, VolumeKind kind, long size, long dataMiB, byte pattern, CancellationToken ct)
    {
        await QemuImg.CreateAsync(path, size, ct: ct);
        if (dataMiB > 0) await QemuImg.WritePatternAsync(path, pattern, 0, dataMiB * MiB, ct);
        var info = await QemuImg.InfoAsync(path, ct);
        return new NewVolume(kind, path, info.VirtualSizeBytes, info.ActualSizeBytes);
    }

    /// <summary>
    /// The test driver forgets everything when the process ends, as a host forgets running domains at reboot. So,
    /// as a host boots its autostart qubes, the demo starts them (netvms first) each time the console starts.
    /// </summary>
    public async Task BootAsync(CancellationToken ct)
    {
        var qubes = await inventory.ListAsync(ct);
        var started = new HashSet<string>();
        async Task BootAsync(Qube q)
        {
            if (!started.Add(q.Name)) return;
            if (q.NetVm is not null && qubes.FirstOrDefault(n => n.Name == q.NetVm.Name) is { } net) await BootAsync(net);
            if (hypervisor.GetDomain(q.Name)?.State != RunState.Halted) return;
            await lifecycle.PrepareStartAsync(q.Name, ct: ct);
            hypervisor.Start(q.Name);
            // The lifecycle event arrives on libvirt's event thread; the console's view takes the new state now so
            // the first page (and the qubes booted after this one) see it running.
            await estate.WaitForStateAsync(q.Name, s => s != RunState.Halted, TimeSpan.FromSeconds(10), ct);
        }
        foreach (var q in qubes.Where(q => q.Autostart && q.Class != QubeClass.AdminVM))
        {
            try { await BootAsync(q); }
            catch (Exception e) when (e is HypervisorException or StorageException or ProcessFailedException or TimeoutException)
            {
                log.LogWarning("Demo boot could not start {Qube}: {Error}", q.Name, e.Message);
            }
        }
    }
}
