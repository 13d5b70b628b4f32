// Installation media and SMBIOS settings on a real libvirtd with real qemu: an empty standalone made by the console
// boots an ISO made here (isolinux, the test guest's kernel and initramfs), its guest reads the settings the console
// wrote into its firmware, and its first shutdown makes the next boot its disk's.
using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealInstallMediaTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    /// <summary>A bootable ISO (El Torito, isolinux) that boots the test guest with a marker on its command line.</summary>
    private async Task<string> MakeIsoAsync(string folder, string marker)
    {
        var tree = Path.Combine(folder, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "isolinux"));
        File.Copy("/usr/lib/ISOLINUX/isolinux.bin", Path.Combine(tree, "isolinux", "isolinux.bin"));
        File.Copy("/usr/lib/syslinux/modules/bios/ldlinux.c32", Path.Combine(tree, "isolinux", "ldlinux.c32"));
        await File.WriteAllTextAsync(Path.Combine(tree, "isolinux", "isolinux.cfg"),
            $"DEFAULT live\nTIMEOUT 0\nLABEL live\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img console=ttyS0 quiet panic=-1 {marker}\n");
        File.Copy(guest.Kernel, Path.Combine(tree, "vmlinuz"));
        File.Copy(guest.Initrd, Path.Combine(tree, "initrd.img"));
        var iso = Path.Combine(folder, "installer.iso");
        await ProcessRunner.RunCheckedAsync("genisoimage", ["-quiet", "-o", iso, "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
            "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "-J", "-R", "-V", "QUBESWEB_TEST", tree]);
        // For qemu's own user, whatever this process' umask: libvirt hands it the ISO read-only.
        File.SetUnixFileMode(folder, (UnixFileMode)0x1ED); // 0755
        File.SetUnixFileMode(iso, (UnixFileMode)0x1A4); // 0644
        return iso;
    }

    [Fact]
    public async Task An_empty_standalone_boots_the_attached_ISO_reads_its_settings_from_SMBIOS_and_boots_its_disk_after_its_first_shutdown()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-iso-" + Guid.NewGuid().ToString("N")[..10];
        var folder = Path.Combine(Path.GetTempPath(), "qubesweb-iso-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var marker = "qubesweb.booted-from=" + name;
        var iso = await MakeIsoAsync(folder, marker);
        // Software emulation, as the test guest uses: nested KVM on the lane's machines may fail in isolinux's mode switches.
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false, extraArgs: ["--domain-type", "qemu"]);
        try
        {
            await SucceedsAsync(host, JobKind.Clone, name, new CloneRequest(QubeClass.StandaloneVM, null, "orange",
                MemoryMiB: 256, VCpus: 1, RootSizeBytes: 1L << 30, PrivateSizeBytes: 64L << 20), Generous);
            await host.Get<QubeCommands>().AttachMediaAsync(name, iso);

            await SucceedsAsync(host, JobKind.Start, name, timeout: Generous);
            var hypervisor = (LibvirtHypervisor)host.Get<IHypervisor>();
            using (var boot = new CancellationTokenSource(Boot))
                await new AgentGuest(name, hypervisor).WaitReadyAsync(Boot, boot.Token);
            var agent = new GuestAgent(new LibvirtAgentTransport(name, call => hypervisor.WithDomain(name, call)), TimeSpan.FromSeconds(10));

            // It runs the kernel isolinux loaded from the ISO, with the ISO's own command line.
            Assert.Contains(marker, (await agent.RunAsync("/bin/cat", ["/proc/cmdline"], Generous)).StdOut);
            // Its firmware carries the qube's settings, as a guest without cloud-init reads them.
            var oem = await agent.RunAsync("/bin/sh", ["-c", "strings /sys/firmware/dmi/tables/DMI | grep '^qubesweb:'"], Generous);
            Assert.Equal([$"qubesweb:name={name}", "qubesweb:class=StandaloneVM", "qubesweb:label=orange", "qubesweb:template=",
                "qubesweb:netvm=", "qubesweb:provides-network=0", "qubesweb:ip=", "qubesweb:gateway=", "qubesweb:dns=", "qubesweb:mac="], oem.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));

            await agent.ShutdownAsync();
            await Eventually.UntilAsync(async () => !(await host.Get<Inventory>().GetAsync(name)).BootFromMedia,
                "its first shutdown to make the disk boot first", Boot);
            var next = XDocument.Parse(await RealLibvirtd.VirshAsync("dumpxml", "--inactive", name)).Root!.Element("devices")!.Elements("disk").ToList();
            Assert.Equal("1", next.Single(d => d.Element("target")!.Attribute("dev")!.Value == "vda").Element("boot")!.Attribute("order")!.Value);
            var cdrom = next.Single(d => d.Attribute("device")!.Value == "cdrom");
            Assert.Equal(iso, cdrom.Element("source")!.Attribute("file")!.Value);
            Assert.Null(cdrom.Element("boot"));
        }
        finally
        {
            await host.StopAsync();
            RealLibvirtd.Remove(name);
            Directory.Delete(folder, recursive: true);
        }
    }
}
