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

    /// <summary>
    /// PID 1: finds the agent's port by its name (no udev here to make /dev/virtio-ports), runs qemu-ga on it, and
    /// powers off when it ends. guest-shutdown runs /sbin/shutdown, which powers off at once.
    /// </summary>
    private const string Init = """
        #!/bin/busybox sh
        /bin/busybox --install -s /bin
        mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
        for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console; do insmod /lib/modules/$m.ko; done
        """ + "\n" + ScreenText + SerialShell + RunAgent;

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
            CpioEntry.File("bin/busybox", await File.ReadAllBytesAsync(Busybox), executable: true),
            CpioEntry.File("usr/sbin/qemu-ga", await File.ReadAllBytesAsync(QemuGa), executable: true),
        };
        files.AddRange(await ModulesAsync(Modules));
        files.AddRange(await LibrariesAsync(QemuGa));
        await File.WriteAllBytesAsync(Initrd, CpioEntry.Archive(files));
        // Readable for qemu's own user whatever this process' umask (a console started in it sets 077).
        File.SetUnixFileMode(_folder, (UnixFileMode)0x1ED); // 0755
        foreach (var f in new[] { Kernel, Initrd }) File.SetUnixFileMode(f, (UnixFileMode)0x1A4); // 0644
    }

    /// <summary>Kernel modules (paths under the kernel's drivers/ or fs/ folder, without ".ko") as /lib/modules/NAME.ko.</summary>
    internal async Task<List<CpioEntry>> ModulesAsync(IEnumerable<string> modules)
    {
        var files = new List<CpioEntry>();
        foreach (var module in modules)
        {
            var path = Path.Combine("/lib/modules", _release, "kernel", module.StartsWith("fs/", StringComparison.Ordinal) ? module : "drivers/" + module) + ".ko";
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
    public string DomainXml(string name, IReadOnlyList<DiskSpec>? disks = null)
    {
        var spec = new DomainSpec(name, Guid.NewGuid(), 256, 1, new QubeMetadata("StandaloneVM", "orange", null), disks ?? []);
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
