// libvirt's block pull (virDomainBlockPull, followed with virDomainGetBlockJobInfo, stopped with
// virDomainBlockJobAbort) on a real qemu domain that a real libvirtd runs: what an instant copy's detach needs to make a
// running qube's disk independent of its backing file. The test driver has no block jobs.
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealBlockJobTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>, IDisposable
{
    private const long MiB = 1L << 20;
    private const string Disk = "vdb";

    // Passable by libvirt's qemu user, which the daemon makes the images' owner while the domain runs, whatever the
    // umask (a console started in this process makes it owner-only).
    private readonly string _folder = PassableFolder(Path.Combine(Path.GetTempPath(), "qubesweb-blockjob-" + Guid.NewGuid().ToString("N")));

    private static string PassableFolder(string path)
    {
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        return path;
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A 32 MiB pattern in a base image and an empty overlay on it: the overlay reads the base's data.</summary>
    private async Task<(string Base, string Overlay)> ImagesAsync()
    {
        var bottom = Path.Combine(_folder, "base.qcow2");
        var top = Path.Combine(_folder, "overlay.qcow2");
        await QemuImg.CreateAsync(bottom, 64 * MiB);
        await QemuImg.WritePatternAsync(bottom, 0x5a, 0, 32 * MiB);
        await QemuImg.CreateAsync(top, 64 * MiB, bottom);
        return (bottom, top);
    }

    private static async Task<bool> SameDataAsync(string a, string b) =>
        (await ProcessRunner.RunAsync(QemuImg.QemuImgPath, ["compare", "-U", "-q", "--", a, b])).ExitCode == 0;

    private static string? BackingInLiveXml(Domain domain) =>
        System.Xml.Linq.XDocument.Parse(domain.GetXmlDesc()).Descendants("disk")
            .Single(d => d.Element("target")?.Attribute("dev")?.Value == Disk)
            .Element("backingStore")?.Element("source")?.Attribute("file")?.Value;

    private (Connect Connect, Domain Domain, string Name) Define(string overlay)
    {
        _ = daemon; // started by the fixture
        var name = "qwt-blockjob-" + Guid.NewGuid().ToString("N")[..10];
        var connect = Connect.Open(RealLibvirtd.Uri);
        return (connect, connect.DefineDomainXml(guest.DomainXml(name, [new DiskSpec(overlay, Disk)])), name);
    }

    [Fact]
    public async Task A_block_pull_makes_a_running_domains_disk_read_on_its_own_with_the_same_data()
    {
        var (bottom, top) = await ImagesAsync();
        var (connect, domain, name) = Define(top);
        try
        {
            // A halted domain has no block jobs: refused, nothing changed.
            var refused = Assert.Throws<LibvirtException>(() => domain.BlockPull(Disk));
            Assert.Equal(ErrorNumber.OperationInvalid, refused.Code);

            domain.Create();
            Assert.Equal(bottom, BackingInLiveXml(domain));
            domain.BlockPull(Disk);
            // Done when libvirt no longer lists the job; meanwhile it is a pull that only moves forward.
            ulong last = 0;
            await Eventually.UntilAsync(() =>
            {
                if (domain.GetBlockJobInfo(Disk) is not { } job) return true;
                Assert.Equal(BlockJobType.Pull, job.Type);
                Assert.True(job.Cursor >= last && job.Cursor <= job.End, $"cursor {job.Cursor} after {last}, end {job.End}");
                last = job.Cursor;
                return false;
            }, "the pull to finish", TimeSpan.FromSeconds(60));
            await Eventually.UntilAsync(() => BackingInLiveXml(domain) is null, "the disk to read on its own in the live XML", TimeSpan.FromSeconds(30));
            domain.Destroy();

            Assert.Null((await QemuImg.InfoAsync(top)).BackingFile);
            Assert.True(await SameDataAsync(bottom, top), "the pulled disk reads other data than its old backing file");
        }
        finally
        {
            RealLibvirtd.Remove(name);
            domain.Dispose();
            connect.Dispose();
        }
    }

    [Fact]
    public async Task A_pull_stopped_half_way_leaves_the_disk_on_its_backing_file_reading_the_same_data()
    {
        var (bottom, top) = await ImagesAsync();
        var (connect, domain, name) = Define(top);
        try
        {
            domain.Create();
            // 1 MiB/s: 32 MiB take half a minute, so the job is seen running and stopped in the middle.
            domain.BlockPull(Disk, bandwidthMiBs: 1);
            await Eventually.UntilAsync(() => domain.GetBlockJobInfo(Disk) is { Cursor: > 0 } job && job.Cursor < job.End,
                "the pull to have copied a part", TimeSpan.FromSeconds(30));

            domain.BlockJobAbort(Disk);

            Assert.Null(domain.GetBlockJobInfo(Disk));
            Assert.Equal(bottom, BackingInLiveXml(domain));
            domain.Destroy();
            Assert.Equal(bottom, (await QemuImg.InfoAsync(top)).BackingFile);
            Assert.True(await SameDataAsync(bottom, top), "a stopped pull changed what the disk reads");
        }
        finally
        {
            RealLibvirtd.Remove(name);
            domain.Dispose();
            connect.Dispose();
        }
    }
}
