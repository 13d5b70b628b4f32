// Installation media on the embedded demo: an ISO attached to an empty standalone boots before its disk until its
// first shutdown, then after it, and is detached on request; what cannot be attached is refused with nothing changed.
// And the settings every domain carries for a guest without cloud-init: SMBIOS OEM strings.
using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.QubeTests;

public sealed class InstallMediaTests
{
    private static string IsoFile(ConsoleHost host, string name) => TestFiles.FakeIso(Path.Combine(host.DataDir, "isos", name));

    private static XElement Domain(ConsoleHost host, string name) => XDocument.Parse(host.Get<IHypervisor>().GetXml(name)).Root!;

    /// <summary>Each disk of the domain by device and target, with its boot order ("" when it has none).</summary>
    private static List<string> Disks(ConsoleHost host, string name) =>
        Domain(host, name).Element("devices")!.Elements("disk")
            .Select(d => $"{d.Attribute("device")!.Value} {d.Element("target")!.Attribute("dev")!.Value} {d.Element("source")?.Attribute("file")?.Value} boot={d.Element("boot")?.Attribute("order")?.Value}")
            .ToList();

    [Fact]
    public async Task An_ISO_boots_an_empty_standalone_until_its_first_shutdown_then_the_disk_does_and_it_is_detached_on_request()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Clone, "installer", new CloneRequest(QubeClass.StandaloneVM, null, "orange"));
        var iso = IsoFile(host, "debian-12.8.0-amd64-netinst.iso");
        var pool = Path.Combine(host.PoolDir, "installer");
        var commands = host.Get<QubeCommands>();

        await commands.AttachMediaAsync("installer", iso);

        var qube = await host.Get<InventoryService>().GetAsync("installer");
        Assert.Equal((iso, true), (qube.InstallMedia, qube.BootFromMedia));
        Assert.Equal([$"disk vda {pool}/root-dirty.qcow2 boot=2", $"disk vdb {pool}/private.qcow2 boot=", $"disk vdc {pool}/volatile.qcow2 boot=",
            $"cdrom sda {iso} boot=1"], Disks(host, "installer"));
        var cdrom = Domain(host, "installer").Element("devices")!.Elements("disk").Single(d => d.Attribute("device")!.Value == "cdrom");
        Assert.NotNull(cdrom.Element("readonly"));
        Assert.Equal("raw", cdrom.Element("driver")!.Attribute("type")!.Value);

        // Installing: it runs from the ISO, then shuts down; the next start boots the disk it was installed onto.
        await SucceedsAsync(host, JobKind.Start, "installer");
        await SucceedsAsync(host, JobKind.Shutdown, "installer");
        await Eventually.UntilAsync(async () => !(await host.Get<InventoryService>().GetAsync("installer")).BootFromMedia, "the first shutdown to end booting from the ISO");
        Assert.Equal([$"disk vda {pool}/root-dirty.qcow2 boot=1", $"disk vdb {pool}/private.qcow2 boot=", $"disk vdc {pool}/volatile.qcow2 boot=",
            $"cdrom sda {iso} boot="], Disks(host, "installer"));

        await commands.DetachMediaAsync("installer");
        Assert.Null((await host.Get<InventoryService>().GetAsync("installer")).InstallMedia);
        Assert.Equal([$"disk vda {pool}/root-dirty.qcow2 boot=", $"disk vdb {pool}/private.qcow2 boot=", $"disk vdc {pool}/volatile.qcow2 boot="],
            Disks(host, "installer"));
        // What libvirt holds is what the inventory says: a reconciliation finds nothing to redefine.
        Assert.DoesNotContain("installer", await host.Get<EstateMonitor>().AlignDomainsAsync());
    }

    [Fact]
    public async Task What_cannot_be_attached_is_refused_saying_why_and_nothing_changes()
    {
        await using var host = await ConsoleHost.StartAsync();
        var iso = IsoFile(host, "installer.iso");
        var notIso = Path.Combine(host.DataDir, "isos", "disk.qcow2");
        await Hypervisor.Storage.QemuImg.CreateAsync(notIso, 64 << 20);
        var inPool = Path.Combine(host.PoolDir, "installer.iso");
        File.Copy(iso, inPool);
        var commands = host.Get<QubeCommands>();
        await SucceedsAsync(host, JobKind.Start, "devbox");

        (string Qube, string? Path, string Expected)[] cases =
        [
            ("work", iso, "work is an AppVM: installation media are for standalones and templates"),
            ("devbox", iso, "devbox is running: shut it down to attach installation media."),
            ("fedora-42", "isos/installer.iso", "'isos/installer.iso' is not an absolute path"),
            ("fedora-42", "", "Give the ISO file's full path on dom0"),
            ("fedora-42", iso + ".missing", $"There is no file {iso}.missing."),
            ("fedora-42", notIso, $"{notIso} is not an ISO 9660 image (no CD001 volume descriptor)"),
            ("fedora-42", inPool, $"{inPool} is in the console's pool"),
            ("nosuch", iso, "There is no qube named 'nosuch'"),
        ];
        foreach (var (qube, path, expected) in cases)
        {
            var e = await Assert.ThrowsAsync<QubeRuleException>(() => commands.AttachMediaAsync(qube, path));
            Assert.Contains(expected, e.Message);
        }
        Assert.All(await host.Get<InventoryService>().ListAsync(), q => Assert.Null(q.InstallMedia));
        Assert.DoesNotContain(Domain(host, "fedora-42").Element("devices")!.Elements("disk"), d => d.Attribute("device")!.Value == "cdrom");
    }

    [Fact]
    public async Task A_standalone_made_empty_with_an_ISO_is_defined_booting_it_and_media_with_a_copy_or_a_non_ISO_are_refused()
    {
        await using var host = await ConsoleHost.StartAsync();
        var iso = IsoFile(host, "installer.iso");

        var job = await SucceedsAsync(host, JobKind.Clone, "installed", new CloneRequest(QubeClass.StandaloneVM, null, "orange", InstallMedia: iso));

        Assert.Contains(job.Log, l => l.Text == $"Attached {iso} as its CD-ROM: it boots from it first, until its first shutdown.");
        var pool = Path.Combine(host.PoolDir, "installed");
        Assert.Equal([$"disk vda {pool}/root-dirty.qcow2 boot=2", $"disk vdb {pool}/private.qcow2 boot=", $"disk vdc {pool}/volatile.qcow2 boot=",
            $"cdrom sda {iso} boot=1"], Disks(host, "installed"));

        var jobs = host.Get<JobEngine>();
        Assert.Equal("Installation media go with an empty root; a copy of a template already has its system.",
            (await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Clone, "copied", new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "red", InstallMedia: iso), CancellationToken.None))).Message);
        var notIso = Path.Combine(host.DataDir, "isos", "notes.txt");
        await File.WriteAllTextAsync(notIso, "not a disc");
        Assert.StartsWith($"{notIso} is not an ISO 9660 image",
            (await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Clone, "empty2", new CloneRequest(QubeClass.StandaloneVM, null, "red", InstallMedia: notIso), CancellationToken.None))).Message);
        Assert.False(Directory.Exists(Path.Combine(host.PoolDir, "copied")));
        Assert.False(Directory.Exists(Path.Combine(host.PoolDir, "empty2")));
    }

    [Fact]
    public async Task Every_domain_carries_the_qubes_settings_as_SMBIOS_OEM_strings_that_follow_its_changes()
    {
        await using var host = await ConsoleHost.StartAsync();

        var work = Domain(host, "work");
        Assert.Equal("sysinfo", work.Element("os")!.Element("smbios")!.Attribute("mode")!.Value);
        var sysinfo = work.Element("sysinfo")!;
        Assert.Equal("smbios", sysinfo.Attribute("type")!.Value);
        Assert.Equal(["qubesweb:name=work", "qubesweb:class=AppVM", "qubesweb:label=blue", "qubesweb:template=fedora-42",
            "qubesweb:netvm=sys-firewall", "qubesweb:provides-network=0", "qubesweb:ip=10.137.0.7", "qubesweb:gateway=10.137.0.5",
            "qubesweb:dns=10.139.1.1 10.139.1.2", "qubesweb:mac=00:16:3e:5e:00:07"], sysinfo.Element("oemStrings")!.Elements("entry").Select(e => e.Value));
        Assert.Contains("qubesweb:provides-network=1", Domain(host, "sys-net").Element("sysinfo")!.Descendants("entry").Select(e => e.Value));
        Assert.Contains("qubesweb:netvm=", Domain(host, "vault").Element("sysinfo")!.Descendants("entry").Select(e => e.Value));

        await host.Get<QubeCommands>().SavePropertiesAsync("vault", new QubeChanges(Label: "green", NetVm: "sys-net"));
        Assert.Contains("qubesweb:label=green", Domain(host, "vault").Descendants("entry").Select(e => e.Value));
        Assert.Contains("qubesweb:netvm=sys-net", Domain(host, "vault").Descendants("entry").Select(e => e.Value));
    }
}
