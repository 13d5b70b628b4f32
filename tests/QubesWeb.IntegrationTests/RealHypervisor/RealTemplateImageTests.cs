// A template imported from a disk image, on a real libvirtd with real qemu: the image (made here, see TestGuestDisk)
// is refused with a wrong digest and imported with the right one; an AppVM on it boots from its disk, and its guest
// applies the first-boot seed the console wrote: hostname, the private volume at /rw with /home on it. Files under
// /home outlive a restart, files under /usr do not, because an AppVM's root is its template's afresh at each start.
// A disposable of it boots, takes its own name, and once its guest powers off nothing of it is left.
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Disposables;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Templates;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealTemplateImageTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    private static readonly TimeSpan Boot = RealLane.Boot;
    private static readonly TimeSpan Generous = RealLane.Generous;

    [Fact]
    public async Task An_imported_image_boots_an_AppVM_that_takes_its_hostname_and_private_volume_from_the_seed_and_keeps_only_home_across_a_restart()
    {
        _ = daemon; // started by the fixture
        var id = Guid.NewGuid().ToString("N")[..10];
        string template = "qwt-tpl-" + id, appvm = "qwt-app-" + id;
        var image = await RealLane.MakeImageAsync(guest, id);
        var folder = Path.GetDirectoryName(image)!;
        var digest = await RealLane.Sha256Async(image);
        await using var host = await RealLane.StartConsoleAsync();
        try
        {
            var refused = await RunAsync(host, JobKind.Import, template, new ImportTemplateRequest(image, "black", "debian", new string('0', 64)), Generous);
            Assert.Equal(JobState.Failed, refused.State);
            Assert.Contains($"The image's SHA-256 is {digest}", refused.Error);
            Assert.Null(await host.Get<Inventory>().FindAsync(template));
            Assert.False(Directory.Exists(Path.Combine(host.PoolDir, template)));
            Assert.Null(host.Get<IHypervisor>().GetDomain(template));

            await SucceedsAsync(host, JobKind.Import, template, new ImportTemplateRequest(image, "black", "debian", digest), Generous);
            await SucceedsAsync(host, JobKind.Create, appvm, new CreateQubeRequest(QubeClass.AppVM, "red", template, null, MemoryMiB: 256, VCpus: 1), Generous);

            var agent = await RealLane.StartAsync(host, appvm);
            Assert.Equal(appvm + "\n", (await agent.RunAsync("/bin/hostname", [], Generous)).StdOut);
            var mounts = (await agent.RunAsync("/bin/cat", ["/proc/mounts"], Generous)).StdOut.Split('\n')
                .Select(l => l.Split(' ')).Where(w => w.Length > 2).Select(w => $"{w[0]} {w[1]} {w[2]}").ToList();
            Assert.Contains("/dev/vda1 / ext4", mounts);
            Assert.Contains("/dev/vdb /rw ext4", mounts);
            Assert.Contains("/dev/vdb /home ext4", mounts); // the bind of /rw/home
            // Its network is what the console gives a qube today: none (no interface; the seed's network-config is empty).
            Assert.Equal("lo\n", (await agent.RunAsync("/bin/ls", ["/sys/class/net"], Generous)).StdOut);
            Assert.Equal(0, (await agent.RunAsync("/bin/sh", ["-c", "echo kept > /home/note && echo lost > /usr/note && sync"], Generous)).ExitCode);
            await agent.ShutdownAsync();
            await Eventually.UntilAsync(() => host.Get<IHypervisor>().GetDomain(appvm)?.State == RunState.Halted, "the AppVM to power off", Boot);

            agent = await RealLane.StartAsync(host, appvm);
            Assert.Equal("kept\n", (await agent.RunAsync("/bin/cat", ["/home/note"], Generous)).StdOut);
            Assert.Equal("kept\n", (await agent.RunAsync("/bin/cat", ["/rw/home/note"], Generous)).StdOut);
            Assert.Equal(1, (await agent.RunAsync("/bin/sh", ["-c", "test -e /usr/note"], Generous)).ExitCode);
            Assert.Equal(appvm + "\n", (await agent.RunAsync("/bin/hostname", [], Generous)).StdOut);
            await agent.ShutdownAsync();
        }
        finally
        {
            await host.StopAsync();
            RealLibvirtd.Remove(appvm);
            RealLibvirtd.Remove(template);
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_disposable_of_the_imported_template_boots_with_its_own_name_and_leaves_nothing_once_its_guest_powers_off()
    {
        _ = daemon; // started by the fixture
        var id = Guid.NewGuid().ToString("N")[..10];
        string template = "qwt-dtpl-" + id, dvm = "qwt-dvm-" + id;
        var image = await RealLane.MakeImageAsync(guest, id);
        var folder = Path.GetDirectoryName(image)!;
        await using var host = await RealLane.StartConsoleAsync();
        string? disp = null;
        try
        {
            await SucceedsAsync(host, JobKind.Import, template, new ImportTemplateRequest(image, "black", "debian", await RealLane.Sha256Async(image)), Generous);
            await SucceedsAsync(host, JobKind.Create, dvm, new CreateQubeRequest(QubeClass.AppVM, "red", template, null, MemoryMiB: 256, VCpus: 1), Generous);
            var disposables = host.Get<DisposableCommands>();
            await disposables.SetDispTemplateAsync(dvm, true);

            var launch = Succeeded(await FinishedAsync(host, (await disposables.LaunchAsync(dvm)).Id, Generous));
            disp = launch.Target;
            var agent = await RealLane.AgentOfAsync(host, disp);
            // Its first-boot seed names it, not its disposable template: the guest took its own hostname.
            Assert.Equal(disp + "\n", (await agent.RunAsync("/bin/hostname", [], Generous)).StdOut);
            Assert.Equal("/dev/vdb /rw ext4", (await agent.RunAsync("/bin/sh", ["-c", "grep ' /rw ' /proc/mounts | cut -d' ' -f1-3"], Generous)).StdOut.Trim());
            await agent.ShutdownAsync();

            // The guest powered itself off: the console removes the domain, the row and every file.
            await Eventually.UntilAsync(async () => await host.Get<Inventory>().FindAsync(disp) is null
                                                    && !Directory.Exists(Path.Combine(host.PoolDir, disp)),
                $"{disp} to be removed once its guest powered off", Boot);
            Assert.Null(host.Get<IHypervisor>().GetDomain(disp));
            Assert.DoesNotContain(disp, await RealLibvirtd.VirshAsync("list", "--all", "--name"));
            Assert.NotNull(await host.Get<Inventory>().FindAsync(dvm));
        }
        finally
        {
            await host.StopAsync();
            if (disp is not null) RealLibvirtd.Remove(disp);
            RealLibvirtd.Remove(dvm);
            RealLibvirtd.Remove(template);
            Directory.Delete(folder, recursive: true);
        }
    }
}
