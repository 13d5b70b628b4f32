// A real guest OS for the real-hypervisor lane, made from what the README's test command installs: Debian's cloud
// kernel booted directly by qemu, with an initramfs holding busybox and the host's own qemu-ga. Small (8 MiB) and up
// in seconds under software emulation, yet a real kernel with a real agent on a real virtio-serial channel.
using System.Text;
using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class TestGuest : IAsyncLifetime
{
    internal const string Busybox = "/bin/busybox", QemuGa = "/usr/sbin/qemu-ga";

    /// <summary>virtio-serial and its console driver are modules in Debian's kernels, loaded by /init in this order.</summary>
    internal static readonly string[] Modules =
    [
        "virtio/virtio_ring", "virtio/virtio", "virtio/virtio_pci_legacy_dev", "virtio/virtio_pci_modern_dev",
        "virtio/virtio_pci", "char/virtio_console",
    ];

    /// <summary>virtio-net and what it needs (the failover pair), loaded after <see cref="Modules"/>; a guest with no NIC loads them for nothing.</summary>
    internal static readonly string[] NetworkModules = ["net/core/failover", "net/net_failover", "net/virtio_net"];

    /// <summary>
    /// PID 1: sets up the network the firmware names (<see cref="NetworkScript"/>), finds the agent's port by its
    /// name (no udev here to make /dev/virtio-ports), runs qemu-ga on it, and powers off when it ends. guest-shutdown
    /// runs /sbin/shutdown, which powers off at once. The agent answers once the network is set up.
    /// </summary>
    private const string Init = """
        #!/bin/busybox sh
        /bin/busybox --install -s /bin
        mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
        for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console failover net_failover virtio_net; do insmod /lib/modules/$m.ko; done
        """ + "\n" + ScreenText + SerialShell + "/sbin/qubesweb-network\n" + RunAgent;

    /// <summary>
    /// The guest's network as the console says it in the firmware, read as a guest without cloud-init would (Qubes'
    /// agents read QubesDB): the SMBIOS OEM strings (type 11, "qubesweb:KEY=VALUE"; busybox has no dmidecode, so the
    /// raw structure is parsed). Its own address on its own NIC (found by its MAC: no udev names it) as a /32 with an
    /// on-link route to the gateway, as Qubes' guests have it; a provider also brings up its other NIC, on its own
    /// link, with the same address (the README's "ip"), routes the qubes' addresses there, forwards, and serves its
    /// name over HTTP.
    /// KEY=VALUE arguments override the firmware's: its strings are fixed at boot, so a running guest whose netvm
    /// changed is told its new gateway so (through its agent). Nothing at all without an address or MAC (netvm none,
    /// no OEM strings: the lane's other guests).
    /// </summary>
    internal const string NetworkScript = """
        #!/bin/busybox sh
        ip= gateway= mac= provides=0 name=
        set_key() {
          case "$1" in
            ip=*) ip=${1#ip=};; gateway=*) gateway=${1#gateway=};; mac=*) mac=${1#mac=};; name=*) name=${1#name=};;
            provides-network=*) provides=${1#provides-network=};;
          esac
        }
        for raw in /sys/firmware/dmi/entries/11-*/raw; do
          [ -r "$raw" ] || continue
          # The structure's formatted part (its length is its byte 1), then its strings, each ended by a NUL.
          len=$(od -An -tu1 -j1 -N1 "$raw" | tr -d ' ')
          dd if="$raw" bs=1 skip="$len" 2>/dev/null | tr '\0' '\n' > /run/oem-strings
          while IFS= read -r s; do case "$s" in qubesweb:*) set_key "${s#qubesweb:}";; esac; done < /run/oem-strings
        done
        for a in "$@"; do set_key "$a"; done
        [ -n "$ip" ] && [ -n "$mac" ] || exit 0
        own= link=
        for i in $(seq 100); do
          for n in /sys/class/net/*; do
            case "$(cat $n/address)" in "$mac") own=${n##*/};; 00:00:00:00:00:00) ;; *) link=${n##*/};; esac
          done
          [ -n "$own" ] && { [ "$provides" != 1 ] || [ -n "$link" ]; } && break
          sleep 0.1
        done
        [ -n "$own" ] || { echo "test guest: no interface has $mac"; exit 1; }
        ip link set lo up
        ip link set "$own" up
        ip addr flush dev "$own"
        ip route flush dev "$own"
        ip addr add "$ip/32" dev "$own"
        if [ -n "$gateway" ]; then
          ip route add "$gateway" dev "$own"
          ip route add default via "$gateway" dev "$own"
        fi
        if [ "$provides" = 1 ] && [ -n "$link" ]; then
          ip link set "$link" up
          ip addr flush dev "$link"
          ip addr add "$ip/32" dev "$link"
          # Its clients are on its link; its own gateway, if any, keeps its more specific route on its own NIC.
          ip route add 10.137.0.0/16 dev "$link"
          echo "$link" > /run/qubesweb-link
          echo 1 > /proc/sys/net/ipv4/ip_forward
          mkdir -p /run/www && echo "$name" > /run/www/index.html
          pidof httpd >/dev/null || httpd -p 80 -h /run/www
        fi
        echo "test guest: $ip on $own${gateway:+ via $gateway}${link:+, gateway on $link}"
        """;

    /// <summary>
    /// A provider's program the console runs through its agent with its running clients' addresses (ProviderClients):
    /// a route to each on its link, as Qubes' vif-route-qubes adds one per client vif, and the list kept for the tests.
    /// </summary>
    internal const string ClientsScript = """
        #!/bin/busybox sh
        link=$(cat /run/qubesweb-link 2>/dev/null)
        if [ -n "$link" ]; then
          for c in $(cat /run/network-clients 2>/dev/null); do ip route del "$c" dev "$link" 2>/dev/null; done
          for c in "$@"; do ip route replace "$c" dev "$link"; done
        fi
        echo "$*" > /run/network-clients
        """;

    /// <summary>What the guest writes on its VGA screen (tty0) before anything else, for the screen tests to find.</summary>
    internal const string ScreenBanner = "test guest: this text is on the VGA screen";

    /// <summary>The banner, several times over, on a cleared screen: a picture of it is plainly the guest's text.</summary>
    internal const string ScreenText = "printf '\\033[2J\\033[H' > /dev/tty0; for i in 1 2 3 4 5 6 7 8; do echo '" + ScreenBanner + "' > /dev/tty0; done\n";

    /// <summary>
    /// A root shell on the serial console (ttyS0), started again when it exits, as a getty would. Its first line says
    /// that it holds the port open: typed input is kept from then on (the port drops it while nothing has it open).
    /// </summary>
    internal const string SerialShell = """
        (while true; do setsid sh -c 'exec </dev/ttyS0 >/dev/ttyS0 2>&1; echo "test guest: shell on ttyS0"; exec sh -i'; done) &
        """ + "\n";

    /// <summary>
    /// The end of every test guest's init: finds the agent's port by its name (no udev here to make
    /// /dev/virtio-ports), runs qemu-ga on it, and powers off when it ends.
    /// </summary>
    internal const string RunAgent = """
        port=
        for i in $(seq 300); do
          for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}; done
          [ -n "$port" ] && [ -e "$port" ] && break
          sleep 0.1
        done
        echo "test guest: guest agent on $port"
        /usr/sbin/qemu-ga -m virtio-serial -p "$port" -t /run
        poweroff -f
        """;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "qubesweb-guest-" + Guid.NewGuid().ToString("N"));

    private string _release = "";

    public string Kernel => Path.Combine(_folder, "vmlinuz");
    public string Initrd => Path.Combine(_folder, "initrd.cpio");

    public async Task InitializeAsync()
    {
        var kernel = Directory.Exists("/boot") ? Directory.GetFiles("/boot", "vmlinuz-*").Order(StringComparer.Ordinal).LastOrDefault() : null;
        if (kernel is null || !File.Exists(Busybox) || !File.Exists(QemuGa))
            throw new InvalidOperationException("The test guest needs a Debian kernel in /boot, busybox and qemu-ga: install linux-image-cloud-amd64 busybox-static qemu-guest-agent (the README's test command does).");
        _release = Path.GetFileName(kernel)["vmlinuz-".Length..];
        // The folder and files are for libvirt's qemu user to read: libvirt labels the kernel and initrd for it.
        Directory.CreateDirectory(_folder);
        File.Copy(kernel, Kernel);

        var files = new List<CpioEntry>
        {
            CpioEntry.Dir("bin"), CpioEntry.Dir("sbin"), CpioEntry.Dir("proc"), CpioEntry.Dir("sys"), CpioEntry.Dir("dev"),
            CpioEntry.Dir("run"), CpioEntry.Dir("tmp"), CpioEntry.Dir("lib"), CpioEntry.Dir("lib/modules"),
            CpioEntry.File("init", Encoding.ASCII.GetBytes(Init.ReplaceLineEndings("\n") + "\n"), executable: true),
            CpioEntry.File("sbin/shutdown", "#!/bin/busybox sh\nexec /bin/busybox poweroff -f\n"u8.ToArray(), executable: true),
            CpioEntry.File("sbin/qubesweb-network", Encoding.ASCII.GetBytes(NetworkScript.ReplaceLineEndings("\n") + "\n"), executable: true),
            CpioEntry.File("usr/lib/qubesweb/network-clients", Encoding.ASCII.GetBytes(ClientsScript.ReplaceLineEndings("\n") + "\n"), executable: true),
            CpioEntry.File("bin/busybox", await File.ReadAllBytesAsync(Busybox), executable: true),
            CpioEntry.File("usr/sbin/qemu-ga", await File.ReadAllBytesAsync(QemuGa), executable: true),
        };
        files.AddRange(await ModulesAsync([.. Modules, .. NetworkModules]));
        files.AddRange(await LibrariesAsync(QemuGa));
        await File.WriteAllBytesAsync(Initrd, CpioEntry.Archive(files));
        // Readable for qemu's own user whatever this process' umask (a console started in it sets 077).
        File.SetUnixFileMode(_folder, (UnixFileMode)0x1ED); // 0755
        foreach (var f in new[] { Kernel, Initrd }) File.SetUnixFileMode(f, (UnixFileMode)0x1A4); // 0644
    }

    /// <summary>Kernel modules (paths under the kernel's drivers/, fs/ or net/core/ folder, without ".ko") as /lib/modules/NAME.ko.</summary>
    internal async Task<List<CpioEntry>> ModulesAsync(IEnumerable<string> modules)
    {
        var files = new List<CpioEntry>();
        foreach (var module in modules)
        {
            var path = Path.Combine("/lib/modules", _release, "kernel", module.StartsWith("fs/", StringComparison.Ordinal) || module.StartsWith("net/core/", StringComparison.Ordinal) ? module : "drivers/" + module) + ".ko";
            files.Add(CpioEntry.File("lib/modules/" + Path.GetFileName(path), await File.ReadAllBytesAsync(path), executable: false));
        }
        return files;
    }

    /// <summary>A program's shared libraries where the host has them (ldd prints "name => /path (addr)" or "/path (addr)").</summary>
    internal static async Task<List<CpioEntry>> LibrariesAsync(string program)
    {
        var files = new List<CpioEntry>();
        var ldd = await ProcessRunner.RunCheckedAsync("ldd", [program]);
        foreach (var lib in ldd.StandardOutput.Split('\n').Select(l => l.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                     .Select(w => w.FirstOrDefault(x => x.StartsWith('/'))).OfType<string>())
            files.Add(CpioEntry.File(lib.TrimStart('/'), await File.ReadAllBytesAsync(lib), executable: true));
        return files;
    }

    /// <summary>
    /// The console's own domain XML for a qube (<see cref="DomainXml.Build"/>: ACPI, the agent's channel), for software
    /// emulation (the lane's machines may have no usable KVM), booting this guest's kernel directly instead of a disk.
    /// </summary>
    /// <param name="disks">Disks the guest gets beside its kernel and initramfs (it boots from neither).</param>
    public string DomainXml(string name, IReadOnlyList<DiskSpec>? disks = null) =>
        DomainXml(new DomainSpec(name, Guid.NewGuid(), 256, 1, new QubeMetadata("StandaloneVM", "orange", null), disks ?? []));

    /// <summary>
    /// The console's own domain XML for <paramref name="spec"/> (an inventory qube's, with its interfaces and OEM
    /// strings), booting this guest: only the kernel, initramfs and command line are added, which the console's
    /// comparison of definitions does not look at.
    /// </summary>
    public string DomainXml(DomainSpec spec)
    {
        var domain = XDocument.Parse(Hypervisor.Domains.DomainXml.Build(spec, "qemu")).Root!;
        domain.Element("os")!.Add(
            new XElement("kernel", Kernel),
            new XElement("initrd", Initrd),
            new XElement("cmdline", "console=ttyS0 quiet panic=-1"));
        return domain.ToString();
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>An initramfs entry, written in the kernel's "newc" cpio format.</summary>
    internal sealed record CpioEntry(string Name, int Mode, byte[] Data)
    {
        public static CpioEntry Dir(string name) => new(name, 0x4000 | 0b111_101_101, []);

        public static CpioEntry File(string name, byte[] data, bool executable) =>
            new(name, 0x8000 | (executable ? 0b111_101_101 : 0b110_100_100), data);

        /// <summary>The entries as files and folders under <paramref name="folder"/> (for <c>mkfs.ext4 -d</c>).</summary>
        public static void WriteTree(string folder, IEnumerable<CpioEntry> entries)
        {
            foreach (var e in entries)
            {
                var path = Path.Combine(folder, e.Name);
                if ((e.Mode & 0x4000) != 0)
                {
                    Directory.CreateDirectory(path);
                    continue;
                }
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                System.IO.File.WriteAllBytes(path, e.Data);
                System.IO.File.SetUnixFileMode(path, (UnixFileMode)(e.Mode & 0xFFF));
            }
        }

        public static byte[] Archive(IEnumerable<CpioEntry> entries)
        {
            using var s = new MemoryStream();
            var ino = 1;
            var made = new HashSet<string>(StringComparer.Ordinal);
            foreach (var e in entries)
            {
                // Parent folders first: the kernel does not make them for a file.
                var parts = e.Name.Split('/');
                for (var i = 1; i < parts.Length; i++)
                {
                    var dir = string.Join('/', parts[..i]);
                    if (made.Add(dir)) Write(s, Dir(dir), ino++);
                }
                if (made.Add(e.Name)) Write(s, e, ino++);
            }
            Write(s, new CpioEntry("TRAILER!!!", 0, []), 0);
            return s.ToArray();
        }

        private static void Write(Stream s, CpioEntry e, int ino)
        {
            var name = Encoding.UTF8.GetBytes(e.Name + "\0");
            uint[] fields = [(uint)ino, (uint)e.Mode, 0, 0, 1, 0, (uint)e.Data.Length, 0, 0, 0, 0, (uint)name.Length, 0];
            var header = "070701" + string.Concat(fields.Select(f => f.ToString("x8")));
            s.Write(Encoding.ASCII.GetBytes(header));
            s.Write(name);
            Pad(s);
            s.Write(e.Data);
            Pad(s);
        }

        private static void Pad(Stream s)
        {
            while (s.Position % 4 != 0) s.WriteByte(0);
        }
    }
}
