// A bootable disk image of the test guest, as a template image would be: an MBR with one partition, ext4 made with
// mkfs.ext4 -d, extlinux, the cloud kernel and an initramfs whose init is a tiny cloud-init (NoCloud). It reads the
// volume labelled cidata, applies its hostname, formats the private volume once and mounts it as the seed's mounts
// say, then hands over to the root's own init, which runs qemu-ga. Made from what the README's test command installs.
using System.Buffers.Binary;
using System.Text;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public static class TestGuestDisk
{
    private const string Mke2fs = "/usr/sbin/mke2fs";
    private const string SyslinuxMbr = "/usr/lib/syslinux/mbr/mbr.bin";
    private const long Size = 128L << 20;
    private const long PartitionStart = 1L << 20;

    /// <summary>The root partition's block device and the seed's modules (ISO 9660 on a virtio disk) besides the agent's.</summary>
    private static readonly string[] Modules = [.. TestGuest.Modules, "block/virtio_blk", "cdrom/cdrom", "fs/isofs/isofs", .. TestGuest.NetworkModules];

    /// <summary>
    /// Stage one, PID 1 of the initramfs. It reads only what the console's seed holds (meta-data's local-hostname,
    /// user-data's fs_setup and mounts; the files are JSON, one key per line as the console writes them), so a seed
    /// that said otherwise would show in the guest. The seed's runcmd and packages are Debian's business: this guest
    /// has no skeleton to copy and starts its agent itself.
    /// </summary>
    private const string StageOne = """
        #!/bin/busybox sh
        /bin/busybox --install -s /bin
        mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
        for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console virtio_blk cdrom isofs failover net_failover virtio_net; do insmod /lib/modules/$m.ko; done
        for i in $(seq 300); do [ -b /dev/vda1 ] && break; sleep 0.1; done
        mkdir -p /newroot /seed
        mount -t ext4 /dev/vda1 /newroot || { echo "stage one: no root file system on /dev/vda1"; poweroff -f; }
        seed=
        for i in $(seq 50); do seed=$(findfs LABEL=cidata 2>/dev/null) && break; sleep 0.1; done
        if [ -n "$seed" ] && mount -t iso9660 -o ro "$seed" /seed; then
          echo "stage one: seed on $seed"
          name=$(sed -n 's/^ *"local-hostname": *"\([^"]*\)".*/\1/p' /seed/meta-data)
          [ -n "$name" ] && hostname "$name" && echo "$name" > /newroot/etc/hostname
          ud=$(tr -d ' \n' < /seed/user-data)
          field() { echo "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",]*\).*/\1/p"; }
          fs=$(echo "$ud" | sed -n 's/.*"fs_setup":\[{\([^}]*\)}\].*/\1/p')
          dev=$(field "$fs" device); label=$(field "$fs" label); type=$(field "$fs" filesystem)
          # Formatted once: never over a file system (overwrite false); ext2/3/4's magic is 0xEF53 at byte 1080.
          if [ -n "$dev" ] && [ "$(dd if=$dev bs=2 skip=540 count=1 2>/dev/null | od -An -tx2 | tr -d ' ')" != ef53 ]; then
            echo "stage one: formatting $dev"; /sbin/mke2fs -q -t "$type" -L "$label" "$dev"
          fi
          echo "$ud" | sed -n 's/.*"mounts":\[\(\[[^]]*\]\(,\[[^]]*\]\)*\)\].*/\1/p' | sed 's/\],\[/\n/g' | tr -d '[]"' |
          while IFS=, read spec dir type rest; do
            case "$spec" in LABEL=*) spec=$(findfs "$spec");; esac
            mkdir -p "/newroot$dir"
            case ",$rest," in
              *,bind,*) mkdir -p "/newroot$spec"; mount --bind "/newroot$spec" "/newroot$dir";;
              *) mount -t "$type" "$spec" "/newroot$dir";;
            esac
            echo "stage one: mounted $spec on $dir"
          done
          umount /seed
        fi
        for d in dev proc sys; do mount --move /$d /newroot/$d; done
        exec switch_root /newroot /sbin/init
        """;

    /// <summary>
    /// Stage two, the root's own init: iproute2's path for busybox's ip (where an update job calls it to set up a NIC
    /// plugged in for its updates proxy), a shell on ttyS0, the agent on its port (found by name: no udev), power off
    /// when it ends.
    /// </summary>
    private const string StageTwo = """
        #!/bin/busybox sh
        /bin/busybox --install -s /bin
        mkdir -p /usr/sbin && ln -sf /bin/busybox /usr/sbin/ip
        """ + "\n" + TestGuest.SerialShell + TestGuest.RunAgent;

    private const string ExtlinuxConf = """
        DEFAULT qube
        TIMEOUT 0
        LABEL qube
          KERNEL /boot/vmlinuz
          APPEND initrd=/boot/initrd.img root=/dev/vda1 console=ttyS0 quiet panic=-1
        """;

    private static byte[] Script(string text) => Encoding.ASCII.GetBytes(text.ReplaceLineEndings("\n") + "\n");

    /// <summary>Writes the raw image to <paramref name="image"/> (its folder is used for the tree and a mount point).</summary>
    public static async Task MakeAsync(TestGuest guest, string image)
    {
        if (!File.Exists("/usr/bin/extlinux") || !File.Exists(SyslinuxMbr) || !File.Exists(Mke2fs))
            throw new InvalidOperationException("The test guest's disk needs extlinux, syslinux-common and e2fsprogs (the README's test command installs them).");
        var folder = Path.GetDirectoryName(image)!;
        var tree = Path.Combine(folder, "tree");
        var mnt = Path.Combine(folder, "mnt");
        Directory.CreateDirectory(mnt);

        var initrd = new List<TestGuest.CpioEntry>
        {
            TestGuest.CpioEntry.Dir("proc"), TestGuest.CpioEntry.Dir("sys"), TestGuest.CpioEntry.Dir("dev"), TestGuest.CpioEntry.Dir("bin"),
            TestGuest.CpioEntry.File("init", Script(StageOne), executable: true),
            TestGuest.CpioEntry.File("bin/busybox", await File.ReadAllBytesAsync(TestGuest.Busybox), executable: true),
            TestGuest.CpioEntry.File("sbin/mke2fs", await File.ReadAllBytesAsync(Mke2fs), executable: true),
        };
        initrd.AddRange(await guest.ModulesAsync(Modules));
        initrd.AddRange(await TestGuest.LibrariesAsync(Mke2fs));

        var root = new List<TestGuest.CpioEntry>
        {
            TestGuest.CpioEntry.Dir("proc"), TestGuest.CpioEntry.Dir("sys"), TestGuest.CpioEntry.Dir("dev"), TestGuest.CpioEntry.Dir("run"),
            TestGuest.CpioEntry.Dir("tmp"), TestGuest.CpioEntry.Dir("etc"), TestGuest.CpioEntry.Dir("home"), TestGuest.CpioEntry.Dir("rw"),
            TestGuest.CpioEntry.Dir("boot/extlinux"),
            TestGuest.CpioEntry.File("sbin/init", Script(StageTwo), executable: true),
            TestGuest.CpioEntry.File("sbin/shutdown", "#!/bin/busybox sh\nexec /bin/busybox poweroff -f\n"u8.ToArray(), executable: true),
            TestGuest.CpioEntry.File("bin/busybox", await File.ReadAllBytesAsync(TestGuest.Busybox), executable: true),
            TestGuest.CpioEntry.File("usr/sbin/qemu-ga", await File.ReadAllBytesAsync(TestGuest.QemuGa), executable: true),
            TestGuest.CpioEntry.File("boot/extlinux/extlinux.conf", Script(ExtlinuxConf), executable: false),
        };
        root.AddRange(await TestGuest.LibrariesAsync(TestGuest.QemuGa));
        TestGuest.CpioEntry.WriteTree(tree, root);

        await using (var f = new FileStream(image, FileMode.CreateNew)) f.SetLength(Size);
        await ProcessRunner.RunCheckedAsync("mkfs.ext4", ["-q", "-F", "-L", "root", "-E", $"offset={PartitionStart}", "-d", tree, image,
            $"{(Size - PartitionStart) / 1024}k"]);
        await WriteMbrAsync(image);
        // extlinux installs into a mounted file system only: a loop mount of the partition, for the time it takes.
        await ProcessRunner.RunCheckedAsync("mount", ["-o", $"loop,offset={PartitionStart}", image, mnt]);
        try
        {
            // The boot loader's files are written here, not by mkfs.ext4 -d, which leaves holes where a file's blocks
            // are zero: extlinux cannot load a file with holes ("Loading /boot/vmlinuz failed: I/O error").
            await File.WriteAllBytesAsync(Path.Combine(mnt, "boot", "vmlinuz"), await File.ReadAllBytesAsync(guest.Kernel));
            await File.WriteAllBytesAsync(Path.Combine(mnt, "boot", "initrd.img"), TestGuest.CpioEntry.Archive(initrd));
            await ProcessRunner.RunCheckedAsync("extlinux", ["--install", Path.Combine(mnt, "boot", "extlinux")]);
        }
        finally
        {
            await ProcessRunner.RunCheckedAsync("umount", [mnt]);
        }
        Directory.Delete(tree, recursive: true);
        Directory.Delete(mnt);
    }

    /// <summary>syslinux's boot code, then one active Linux partition from 1 MiB to the end (LBA only) and the signature.</summary>
    private static async Task WriteMbrAsync(string image)
    {
        var mbr = new byte[512];
        (await File.ReadAllBytesAsync(SyslinuxMbr)).AsSpan(0, 440).CopyTo(mbr);
        var entry = mbr.AsSpan(446, 16);
        entry[0] = 0x80; // active
        entry[1] = 0xFE; entry[2] = 0xFF; entry[3] = 0xFF; // CHS start: beyond CHS, use LBA
        entry[4] = 0x83; // Linux
        entry[5] = 0xFE; entry[6] = 0xFF; entry[7] = 0xFF;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], (uint)(PartitionStart / 512));
        BinaryPrimitives.WriteUInt32LittleEndian(entry[12..], (uint)((Size - PartitionStart) / 512));
        mbr[510] = 0x55; mbr[511] = 0xAA;
        await using var f = new FileStream(image, FileMode.Open, FileAccess.Write);
        await f.WriteAsync(mbr);
    }
}
