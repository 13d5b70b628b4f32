using System.Diagnostics;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.RealHypervisor;

/// <summary>
/// The console against a real libvirtd running real qemu domains. A domain with no guest OS ignores the ACPI
/// shutdown request, which is exactly the case Qubes' "shut down, then kill after the timeout" exists for.
/// </summary>
public sealed class RealHypervisorTests(RealLibvirtd daemon) : IClassFixture<RealLibvirtd>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AQubeIsDefinedStartedAndKilledAfterItIgnoresTheShutdownTimeout()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false, extraArgs:
            ["--Lifecycle:ShutdownTimeout=00:00:03"]);
        try
        {
            await CreateStandaloneAsync(host, name, "orange", notes: "<img src=x onerror=alert(1)> ]]>");

            var estate = host.Get<EstateMonitor>();
            await estate.ReconcileAsync();
            var hypervisor = host.Get<IHypervisor>();
            Assert.Equal(new QubeMetadata("StandaloneVM", "orange", null), hypervisor.GetMetadata(name));
            Assert.Equal(RunState.Halted, estate.StateOf(name));

            await SucceedsAsync(host, JobKind.Start, name, timeout: Wait);
            Assert.Equal(RunState.Running, estate.StateOf(name));
            // The console's private modes (0600 images in 0711 folders, see PrivateFiles) did not keep qemu out:
            // it runs as its own user, which reached the images only through libvirt's DAC relabelling.
            var pool = Path.Combine(host.DataDir, "pool");
            foreach (var folder in new[] { host.DataDir, pool, Path.Combine(pool, name) })
                Assert.Equal(PrivateFiles.FolderMode, File.GetUnixFileMode(folder));
            Assert.Equal(["private.qcow2", RootFiles.Dirty, RootFiles.Revision(1), "volatile.qcow2"],
                Directory.GetFiles(Path.Combine(pool, name)).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.All(Directory.GetFiles(Path.Combine(pool, name)), f => Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(f)));
            var live = await RealLibvirtd.VirshAsync("dumpxml", name);
            var dac = System.Xml.Linq.XDocument.Parse(live).Descendants("seclabel").First(l => (string?)l.Attribute("model") == "dac");
            Assert.NotEqual("+0:+0", dac.Element("label")?.Value);
            // qemu's domain XML, with all libvirt's defaults, still reads as what the console defined.
            Assert.DoesNotContain(name, await estate.AlignDomainsAsync());

            var shutdown = await SucceedsAsync(host, JobKind.Shutdown, name, timeout: Wait);
            Assert.Contains(shutdown.Log, l => l.Text.Contains("did not shut down within 3 s; killing it"));
            Assert.Equal(RunState.Halted, hypervisor.GetDomain(name)!.State);
        }
        finally
        {
            // The console first: while it runs it defines the qube again from its inventory, as it should.
            await host.StopAsync();
            RealLibvirtd.Remove(name);
        }
    }

    [Fact]
    public async Task AStartAndAKillMadeWithVirshAppearInTheConsolesState()
    {
        var name = "qwt-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false);
        try
        {
            await AddStandaloneAsync(host, name, "purple");
            var estate = host.Get<EstateMonitor>();
            await estate.ReconcileAsync();

            // Another process, behind the console's back: only libvirt's events can tell the console.
            await RealLibvirtd.VirshAsync("start", name);
            await estate.WaitForStateAsync(name, s => s == RunState.Running, Wait, Cancel());
            await RealLibvirtd.VirshAsync("destroy", name);
            await estate.WaitForStateAsync(name, s => s == RunState.Halted, Wait, Cancel());

            // Undefined behind its back, the qube is defined again from the inventory, the source of truth.
            await RealLibvirtd.VirshAsync("undefine", name);
            await Eventually.UntilAsync(async () =>
            {
                if (host.Get<IHypervisor>().GetDomain(name) is not null) return true;
                await estate.ReconcileAsync();
                return false;
            }, $"{name} to be defined again from the inventory", Wait);
        }
        finally
        {
            // The console first: while it runs it defines the qube again from its inventory, as it should.
            await host.StopAsync();
            RealLibvirtd.Remove(name);
        }
    }

    [Fact]
    public async Task CancellingAShutdownThatWaitsForTheGuestLeavesTheQubeRunningAndTheJobCancelled()
    {
        var name = "qwt-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false, extraArgs: ["--Lifecycle:ShutdownTimeout=00:05:00"]);
        try
        {
            await AddStandaloneAsync(host, name, "green");
            var estate = host.Get<EstateMonitor>();
            await estate.ReconcileAsync();
            var jobs = host.Get<JobEngine>();
            await SucceedsAsync(host, JobKind.Start, name, timeout: Wait);

            // No guest OS answers the ACPI request: the job waits for the guest, and the user gives up on it.
            var shutdown = await jobs.EnqueueAsync(JobKind.Shutdown, name);
            var changed = new SemaphoreSlim(0);
            jobs.JobChanged += id => { if (id == shutdown.Id) changed.Release(); };
            while ((await jobs.GetAsync(shutdown.Id))!.Step != "Shutting down")
                Assert.True(await changed.WaitAsync(Wait), "the shutdown job never reached its waiting step");
            Assert.True(await jobs.CancelAsync(shutdown.Id));

            var ended = await FinishedAsync(host, shutdown.Id, Wait);
            Assert.Equal(JobState.Cancelled, ended.State);
            Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain(name)!.State);
            // Its lock is free again: the user can kill it now.
            await SucceedsAsync(host, JobKind.Kill, name, timeout: Wait);
        }
        finally
        {
            await host.StopAsync();
            RealLibvirtd.Remove(name);
        }
    }

    /// <summary>
    /// A small standalone made by the console's own job (an empty 1 GiB root, as for installing from media): its
    /// files and folders carry the modes the console gives them, which a start must get past on a real host.
    /// </summary>
    private static async Task CreateStandaloneAsync(ConsoleHost host, string name, string label, string notes = "")
    {
        await SucceedsAsync(host, JobKind.Clone, name, new CloneRequest(QubeClass.StandaloneVM, null,
            label, MemoryMiB: 128, VCpus: 1, RootSizeBytes: 1L << 30, PrivateSizeBytes: 64L << 20, Notes: notes), Wait);
    }

    /// <summary>
    /// A small standalone with a plain 64 MiB qcow2 root and no runtime overlays, so virsh can start it behind the
    /// console's back; its folder is made as the console makes pool folders (0711), or qemu's user could not reach it.
    /// </summary>
    private static async Task AddStandaloneAsync(ConsoleHost host, string name, string label)
    {
        var root = Path.Combine(host.DataDir, "pool", name, "root.qcow2");
        PrivateFiles.CreateFolder(Path.GetDirectoryName(root)!);
        await QemuImg.CreateAsync(root, 64L << 20);
        await host.Get<Inventory>().CreateAsync(new NewQube(name, QubeClass.StandaloneVM, label, MemoryMiB: 128, VCpus: 1,
            Volumes: [new NewVolume(VolumeKind.Root, root, 64L << 20)]));
    }

    private static CancellationToken Cancel() => new CancellationTokenSource(Wait).Token;
}
