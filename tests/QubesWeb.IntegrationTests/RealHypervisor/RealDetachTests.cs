// An instant standalone made independent while its real guest runs and writes to its root, with its qemu killed while
// the copy runs: afterwards its root reads nothing from its template, every write the guest had synced is there, and
// every file it had from its template reads as before.
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealDetachTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    /// <summary>
    /// Every file of the root file system with its SHA-256, but the writer's and the agent's state (in /run, which is no
    /// tmpfs here): what the template gave the qube.
    /// </summary>
    private const string HashTemplateFiles = "find / -xdev -type f ! -path '/w/*' ! -path '/run/*' -exec sha256sum {} + | sort";

    private const int ExtraMiB = 512;

    /// <summary>Numbered files, each synced, then the last number synced, until the guest dies.</summary>
    private const string Writer = "mkdir -p /w && (i=0; while :; do echo $i > /w/$i; sync; echo $i > /w/last; sync; i=$((i+1)); done) </dev/null >/dev/null 2>&1 &";

    [Fact]
    public async Task Made_independent_while_its_guest_writes_and_its_qemu_is_killed_it_keeps_every_synced_write_and_its_template_data()
    {
        _ = daemon; // started by the fixture
        var id = Guid.NewGuid().ToString("N")[..10];
        string template = "qwt-dtpl-" + id, standalone = "qwt-dsa-" + id;
        var image = await RealLane.MakeImageAsync(guest, id);
        var folder = Path.GetDirectoryName(image)!;
        // Data past the guest's partition, so the copy takes seconds, not a blink: the test acts while it runs.
        var imageBytes = new FileInfo(image).Length;
        await using (var f = new FileStream(image, FileMode.Open, FileAccess.Write))
        {
            f.Seek(imageBytes, SeekOrigin.Begin);
            var block = new byte[1 << 20];
            Array.Fill(block, (byte)0x5a);
            for (var i = 0; i < ExtraMiB; i++) f.Write(block);
        }
        var tailSha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Enumerable.Repeat((byte)0x5a, 16 << 20).ToArray()));
        var tail = $"dd if=/dev/vda bs=1M skip={imageBytes / (1 << 20) + ExtraMiB - 16} count=16 2>/dev/null | sha256sum";
        await using var host = await RealLane.StartConsoleAsync();
        try
        {
            await SucceedsAsync(host, JobKind.Import, template, new ImportTemplateRequest(image, "black", "debian", await RealLane.Sha256Async(image)), RealLane.Generous);
            var locks = host.Get<RootLocks>();
            var detach = host.Get<DetachCommands>();
            // Made at once on the template's revision; its detach held back (paused) until the guest writes.
            using (await locks.LockAsync(standalone, CancellationToken.None))
            {
                await SucceedsAsync(host, JobKind.Clone, standalone, new CloneRequest(QubeClass.StandaloneVM, template, "orange", MemoryMiB: 256, VCpus: 1), RealLane.Generous);
                await detach.PauseAsync(standalone);
            }
            Assert.NotNull(await host.Get<RootDetach>().DependencyAsync(standalone));

            var agent = await RealLane.StartAsync(host, standalone);
            var before = await RunAsync(agent, HashTemplateFiles);
            Assert.Contains(" /bin/busybox\n", before);
            Assert.StartsWith(tailSha, await RunAsync(agent, tail));
            await RunAsync(agent, Writer);
            await Eventually.UntilAsync(async () => await LastWrittenAsync(agent) >= 5, "the guest to have synced its first writes", RealLane.Generous);

            // The copy (half a GiB and more) runs while the guest writes; once it has started, the qube's lock is held here,
            // so its swap waits until qemu is killed.
            var copying = await detach.ResumeAsync(standalone);
            var bottom = Path.Combine(host.PoolDir, standalone, RootFiles.Revision(1));
            await Eventually.UntilAsync(() => File.Exists(RootDetach.PartOf(bottom)), "the detach to copy", RealLane.Generous);
            using (await locks.LockAsync(standalone, CancellationToken.None))
            {
                Assert.Equal(JobState.Running, (await host.Get<JobEngine>().GetAsync(copying.Id))!.State);
                Assert.NotNull((await QemuImg.InfoAsync(bottom)).BackingFile);
                var reached = await LastWrittenAsync(agent);
                await Eventually.UntilAsync(async () => await LastWrittenAsync(agent) > reached, "the guest to write during the copy", RealLane.Generous);
                await RealLibvirtd.VirshAsync("destroy", standalone);
            }
            Succeeded(await FinishedAsync(host, copying.Id, RealLane.Generous));
            // The stop outside the console is committed as the next revision; nothing is left to run.
            await Eventually.UntilAsync(async () => (await host.Get<JobEngine>().QueryAsync(new JobQuery { States = [JobState.Queued, JobState.Running] })).Count == 0
                                                    && host.Get<IHypervisor>().GetDomain(standalone)?.State == RunState.Halted,
                "the killed qube's writes to be committed", RealLane.Generous);

            Assert.Null(await host.Get<RootDetach>().DependencyAsync(standalone));
            var history = (await host.Get<RootRevisions>().HistoryAsync(standalone))!;
            var chain = await ImageChain.ReadAsync(Path.Combine(host.PoolDir, standalone, RootFiles.Revision(history.Current)), host.PoolDir);
            Assert.All(chain, layer => Assert.StartsWith(Path.Combine(host.PoolDir, standalone) + "/", layer.Path));

            agent = await RealLane.StartAsync(host, standalone);
            Assert.Equal(before, await RunAsync(agent, HashTemplateFiles));
            Assert.StartsWith(tailSha, await RunAsync(agent, tail));
            var last = await LastWrittenAsync(agent);
            Assert.True(last > 5, $"the last synced write was {last}");
            var written = await RunAsync(agent, $"i=0; while [ $i -le {last} ]; do [ \"$(cat /w/$i)\" = $i ] || echo \"/w/$i is wrong\"; i=$((i+1)); done; echo checked");
            Assert.Equal("checked\n", written);
            await agent.ShutdownAsync();
        }
        finally
        {
            await host.StopAsync();
            RealLibvirtd.Remove(standalone);
            RealLibvirtd.Remove(template);
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<string> RunAsync(Hypervisor.Agent.GuestAgent agent, string script)
    {
        var result = await agent.RunAsync("/bin/sh", ["-c", script], RealLane.Generous);
        Assert.True(result.ExitCode == 0, $"'{script}' failed in the guest: {result.StdErr}");
        return result.StdOut;
    }

    /// <summary>The number the guest's writer last synced, or -1 before its first.</summary>
    private static async Task<int> LastWrittenAsync(Hypervisor.Agent.GuestAgent agent) =>
        int.TryParse((await RunAsync(agent, "cat /w/last 2>/dev/null; true")).Trim(), out var n) ? n : -1;
}
